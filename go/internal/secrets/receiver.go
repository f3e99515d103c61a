package secrets

import _ "embed"

// receiverScript is the secret receiver (receiver.sh): it runs on the host,
// through sudo when enabled, and reads the stream Encode writes on its
// stdin. Where it writes and as whom, how a session is all or nothing, and
// what it prints are described in the file. The values only travel on
// stdin; argv holds nothing but the script.
//
//go:embed receiver.sh
var receiverScript string
