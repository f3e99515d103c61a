# python
# The VM test's script; ./default.nix puts `facts` (store paths) before it.

targets = [alpha, beta, gamma]
toplevels = facts["toplevels"]
derivations = facts["derivations"]
poison = " ".join(["this", "must", "not", "appear", "in", "the", "nix", "store"])


def store_paths(node):
    return set(node.succeed("ls /nix/store").split())


def run(args, env="", fail=False):
    """Runs the fleet's app on the deployer: `nix run . -- ARGS`."""
    cmd = f"cd /root/fleet && {env} nix run . -- {args} 2>&1"
    status, out = deployer.execute(cmd)
    deployer.log(out)
    assert (status != 0) == fail, f"{cmd}: exit status {status}"
    return out


def current(node):
    return node.succeed("readlink -f /run/current-system").strip()


def boot_profile(node):
    return node.succeed("readlink -f /nix/var/nix/profiles/system").strip()


def set_marker(marker):
    deployer.succeed(f"echo {marker} > /root/fleet/marker")


def has_secret(node, path, content, stat):
    got = node.succeed(f"cat '{path}'")
    assert got == content, f"{path}: {got=}"
    got = node.succeed(f"stat -c '%a %U %G' '{path}'").strip()
    assert got == stat, f"{path}: {got=}"


start_all()
for node in targets:
    node.wait_for_unit("sshd.service")
deployer.wait_for_unit("multi-user.target")

deployer.succeed(f"install -Dm600 {facts['privateKey']} /root/.ssh/id_ecdsa")
for user, node in [("root", alpha), ("deploy", beta), ("root", gamma)]:
    deployer.wait_until_succeeds(
        f"ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null {user}@{node.name} true",
        timeout=60,
    )

# Secrets come from a real password store (the default command) and from
# files that exist only at run time.
deployer.succeed(
    "gpg --batch --passphrase '' --quick-gen-key 'lollypops test <test@example.org>' default default never",
    "pass init test@example.org",
    "printf %s db-password-value | pass insert --multiline db-password",
    "printf %s alice-hm-value | pass insert --multiline users/alice/hm-secret",
    f"printf %s '{poison}' > /root/poison",
    "mkdir /root/extra-input && head -c 16 /dev/urandom | base32 > /root/extra-input/token",
)
deployer.succeed(f"cp -r --no-preserve=mode {facts['fleet']} /root/fleet")
deployer.succeed("cd /root/fleet && nix flake lock 2>&1")
extra = json.loads(deployer.succeed("cd /root/fleet && nix flake archive --json"))["inputs"]["extra"]["path"]

new_since = {node.name: store_paths(node) for node in [deployer, alpha, beta, gamma]}

with subtest("--list-all lists every host's tasks, as the README shows them"):
    out = run("--list-all")
    for host in ["alpha", "beta", "gamma"]:
        for task in ["", "check-vars:", "deploy-flake:", "deploy-secrets:", "rebuild:"]:
            assert f"* {host}:{task}" in out, f"{host}:{task} missing from:\n{out}"

with subtest("before deploying, beta lacks what only archive brings"):
    beta.fail(f"nix-store --check-validity {facts['lollypops']}")
    beta.fail(f"nix-store --check-validity {extra}")

with subtest("the default deploy reaches every host"):
    run("all")
    for node in targets:
        assert current(node) == toplevels[node.name]["FIRST"], f"{node.name}: {current(node)=}"
        node.succeed("grep -x FIRST /etc/deployment")

with subtest("copy: alpha evaluated its own system"):
    alpha.succeed(f"nix-store --check-validity {derivations['alpha']['FIRST']}")
    deployer.fail(f"nix-store --check-validity {derivations['alpha']['FIRST']}")

with subtest("archive: the flake's inputs reached beta, which evaluated there"):
    beta.succeed(f"nix-store --check-validity {facts['lollypops']}")
    beta.succeed(f"nix-store --check-validity {extra}")
    beta.succeed(f"nix-store --check-validity {derivations['beta']['FIRST']}")

with subtest("local evaluation: gamma's system was evaluated on the deployer"):
    deployer.succeed(f"nix-store --check-validity {derivations['gamma']['FIRST']}")
    gamma.fail(f"nix-store --check-validity {derivations['gamma']['FIRST']}")

with subtest("secrets have their content, mode and owner"):
    has_secret(alpha, "/run/keys/db-password", "db-password-value", "400 root root")
    has_secret(alpha, "/run/keys/poison", poison, "400 root root")
    has_secret(alpha, "/var/lib/app/token", "app-token-value", "440 app app")
    # Its owner exists only once the new system is active.
    has_secret(alpha, "/run/keys/late", "late-value", "400 late root")
    has_secret(beta, "/run/keys/beta-secret", "beta-secret-value", "400 root root")
    has_secret(gamma, "/run/keys/gamma-secret", "gamma-secret-value", "400 root root")

with subtest("a service ordered after its secret's unit starts only once the secret is there"):
    unit = "lollypops-secret-gamma\\x2dsecret.service"
    gamma.wait_for_unit(unit)
    gamma.wait_for_unit("waiter.service")
    assert gamma.succeed("cat /run/waiter-saw").split() == ["present"], gamma.succeed("cat /run/waiter-saw")
    # As after a reboot that emptied /run/keys: the file is gone, the
    # unit goes down, and the service's start waits for the next deploy.
    gamma.succeed("systemctl stop waiter.service", "rm /run/keys/gamma-secret")
    gamma.wait_until_succeeds(f"test \"$(systemctl is-active '{unit}')\" = inactive", timeout=30)
    gamma.succeed("systemctl start --no-block waiter.service")
    gamma.wait_until_succeeds(f"test \"$(systemctl is-active '{unit}')\" = activating", timeout=30)
    gamma.sleep(2)
    gamma.fail("systemctl is-active waiter.service")
    run("gamma:deploy-secrets")
    gamma.wait_for_unit("waiter.service")
    gamma.wait_for_unit(unit)
    assert gamma.succeed("cat /run/waiter-saw").split() == ["present", "present"], gamma.succeed("cat /run/waiter-saw")

with subtest("home-manager secrets are deployed for the users that import homeModules.default"):
    has_secret(
        alpha, "/home/alice/lollypops-secrets/hm-secret", "alice-hm-value", "400 alice users"
    )
    alpha.fail("test -e /home/bob/lollypops-secrets")

with subtest("a non-root ssh user deploys through sudo"):
    # root cannot log in to beta; what needed root went through sudo.
    sudo_log = beta.succeed("journalctl _COMM=sudo --no-pager")
    assert "deploy : " in sudo_log and "USER=root" in sudo_log, sudo_log

with subtest("REBUILD_ACTION=test activates without making a boot entry"):
    set_marker("SECOND")
    run("alpha", env="REBUILD_ACTION=test")
    assert current(alpha) == toplevels["alpha"]["SECOND"], f"{current(alpha)=}"
    assert boot_profile(alpha) == toplevels["alpha"]["FIRST"], f"{boot_profile(alpha)=}"

with subtest("REBUILD_ACTION=boot makes the boot entry without activating"):
    set_marker("THIRD")
    run("alpha", env="REBUILD_ACTION=boot")
    assert current(alpha) == toplevels["alpha"]["SECOND"], f"{current(alpha)=}"
    assert boot_profile(alpha) == toplevels["alpha"]["THIRD"], f"{boot_profile(alpha)=}"

with subtest("a target that is down fails the run; the others still deploy"):
    # Stopping sshd leaves its sessions (and any ssh master) alive.
    beta.succeed("systemctl stop sshd.service", "pkill -f 'sshd: ' || true")
    run("all", fail=True)
    assert current(alpha) == toplevels["alpha"]["THIRD"], f"{current(alpha)=}"
    assert current(gamma) == toplevels["gamma"]["THIRD"], f"{current(gamma)=}"
    assert current(beta) == toplevels["beta"]["FIRST"], f"{current(beta)=}"
    beta.systemctl("start sshd.service")


with subtest("a unit that fails in the switch: the health checks decide, the unit is named"):
    set_marker("FLAKY")
    out = run("alpha")
    assert current(alpha) == toplevels["alpha"]["FLAKY"], f"{current(alpha)=}"
    assert boot_profile(alpha) == toplevels["alpha"]["FLAKY"], f"{boot_profile(alpha)=}"
    assert "failed: flaky.service" in out, out

with subtest("a health check slower than confirm-timeout is given its time"):
    set_marker("SLOWCHECK")
    out = run("alpha")
    assert current(alpha) == toplevels["alpha"]["SLOWCHECK"], f"{current(alpha)=}"
    assert 'health check "slow" passed' in out, out

with subtest("two deploys at once: the second is refused while the first's activation waits"):
    set_marker("SLOWCHECK")
    deployer.succeed("cd /root/fleet && (nix run . -- alpha >/root/first.log 2>&1; echo $? >/root/first.status) &")
    alpha.wait_until_succeeds("grep -qx activated /run/lollypops/activation/*/status", timeout=300)
    out = run("alpha", fail=True)
    assert "being deployed by" in out or "an activation by another run" in out, out
    deployer.wait_until_succeeds("test -e /root/first.status", timeout=300)
    assert deployer.succeed("cat /root/first.status").strip() == "0", deployer.succeed("cat /root/first.log")

with subtest("nothing of the activations is left on the targets"):
    for node in targets:
        node.succeed("test -z \"$(ls -A /run/lollypops/activation 2>/dev/null)\"")
        out = node.succeed("find /nix/var/nix/gcroots/auto -lname '/run/lollypops/*' -exec test -e {} ';' -print")
        assert out == "", f"{node.name}: GC roots left: {out}"


def poison_in_new_paths(node):
    new = sorted(store_paths(node) - new_since[node.name])
    node.log(f"{len(new)} store paths were created")
    if not new:
        return False
    paths = " ".join(f"/nix/store/{p}" for p in new)
    status, out = node.execute(f"grep -rlF '{poison}' {paths}")
    if status == 0:
        node.log("the secret is in: " + out)
    return status == 0


with subtest("no secret value reached a Nix store"):
    for node in [deployer, alpha, beta, gamma]:
        assert not poison_in_new_paths(node), f"{node.name}: the poison is in the store"

with subtest("the store check can fail"):
    deployer.succeed("nix-store --add /root/poison")
    assert poison_in_new_paths(deployer), "the check missed the poison"
