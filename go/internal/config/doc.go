// Package config decodes and validates the inventory: the JSON that Nix
// produces from each host's (and home's) lollypops options (nix/entry.nix,
// nix/project-home.nix) and that the runner consumes. It is the contract
// between the Nix and the Go halves. The runner gets one target's entry at
// a time from a flake (go/internal/nixeval, NewDocument, Add and AddHome),
// or a whole document from a file (--inventory, which nix/inventory.nix
// writes).
//
// # The contract (version 1)
//
// The document is one object:
//
//	{
//	  "version": 1,
//	  "hosts": { "<name>": <host>, ... },
//	  "homes": { "<name>": <home>, ... }
//	}
//
// <name> is the host's attribute name in nixosConfigurations; it names the
// host's tasks ("<name>", "<name>:rebuild", ...) and is the #attribute
// passed to nixos-rebuild --flake. A host is:
//
//	{
//	  "flake": "/nix/store/<hash>-source",      // the configFlake's source (…-source/<dir> for ?dir=)
//	  "deployment": {
//	    "config-dir": "/var/src/lollypops",      // absolute path on the host
//	    "deploy-method": "copy" | "archive",
//	    "local-evaluation": false,
//	    "build-host": null | {                   // builds the system (evaluated here)
//	      "host": "builder.example.org", "user": "nix" | null, "opts": [],
//	      "host-key": null | "ssh-ed25519 AAAA...", "host-key-policy": "strict" | "accept-new" | "pinned"
//	    },
//	    "tags": ["web"],                         // selected as @web
//	    "ssh": {
//	      "host": "host1.example.org",           // ssh destination (name, alias or address)
//	      "user": "root" | null,                 // null: ssh's own default (ssh_config, $USER)
//	      "command": "ssh",                      // the ssh program, one word
//	      "opts": ["-p", "2222"],                // extra ssh arguments, passed as argv
//	      "host-key-policy": "strict" | "accept-new" | "pinned",
//	      "host-key": null | "ssh-ed25519 AAAA..." // required by "pinned", else null
//	    },
//	    "sudo": { "enable": false, "command": "sudo", "opts": [] },
//	    "rollback": { "enable": true, "confirm-timeout": 30 },  // seconds
//	    "health-checks": { "<name>": <check>, ... },
//	    "reboot": { "enable": false, "timeout": 300 }           // seconds
//	  },
//	  "secrets": {
//	    "remove-stale": false,
//	    "files": [ <secret>, ... ]
//	  },
//	  "tasks": ["deploy-flake", "deploy-secrets", "rebuild"],
//	  "extraTasks": { "<task>": { "desc": "...", "cmds": ["..."], "deps": ["..."], "dir": "." } }
//	}
//
// A home is a home-manager configuration deployed on its own, as its user
// (nix/project-home.nix; <name> is its attribute name in
// homeConfigurations, "alice" or "alice@host1"). The runner makes it a
// [Host] with [Host.Home] set; hosts and homes share one namespace.
//
//	{
//	  "activation-package": "/nix/store/<hash>-home-manager-generation.drv", // or its output
//	  "home-directory": "/home/alice",           // the list of written secrets lives below
//	  "deployment": { "tags": [...], "ssh": {...}, "sudo": {...} },  // as a host's
//	  "secrets": { "remove-stale": false, "files": [ <secret>, ... ] },
//	  "tasks": ["deploy-secrets", "rebuild"],    // no deploy-flake, no diff
//	  "extraTasks": { ... }
//	}
//
// A secret is:
//
//	{
//	  "name": "db-password",
//	  "home-manager-user": null | "alice",  // set for secrets of a home-manager user
//	  "cmd": "pass db-password",             // run on the deployer; prints the value
//	  "path": "/run/keys/db-password",       // absolute path on the host
//	  "owner": "root", "group": "root",      // names or numeric ids
//	  "mode": "0400",                        // octal
//	  "upload-at": "pre-activation" | "post-activation",
//	  "allow-empty": false,
//	  "restartUnits": ["nginx.service"],     // restarted (try-restart) when a deploy changes the value;
//	  "reloadUnits": []                      // reloaded so; both [] for a home-manager user's secret
//	}
//
// A health check is run after the activation, either on the host (cmd,
// through sudo when enabled) or from the deployer (an HTTP GET of url that
// must answer status):
//
//	{
//	  "cmd": null | "systemctl is-active nginx",
//	  "url": null | "http://host1/health",  // exactly one of cmd and url
//	  "status": 200,                        // the HTTP status expected (url)
//	  "timeout": 10,                        // seconds per attempt
//	  "retries": 3,                         // attempts after the first
//	  "interval": 2                         // seconds between attempts
//	}
//
// # Rules
//
//   - Every field is required, and no other field is allowed: the Nix side
//     owns every default, and the runner never applies one of its own. An
//     unknown or missing field is an error naming the host and the field.
//   - "version" must equal [Version]. A runner and a Nix module from
//     different lollypops revisions are reported as such.
//   - The inventory never holds secret values: only the commands that print
//     them and where they go.
//   - Values are validated when the inventory loads (see [Validate]): store
//     paths with go-nix, absolute clean paths without control characters,
//     octal modes, user, group, host and task names. A value that could be
//     mistaken for an option or a shell construct is rejected there, so that
//     nothing from the inventory is ever executed by accident.
//
// Example inventories live in testdata/.
package config
