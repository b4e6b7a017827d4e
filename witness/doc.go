// Package witness is both sides of the C2SP transparency log witness protocol
// (https://c2sp.org/tlog-witness) for keytrail's log.
//
// A witness cosigns a log's checkpoints (https://c2sp.org/tlog-cosignature):
// it keeps the latest checkpoint it cosigned for each log and cosigns a new
// one only with a consistency proof that it extends that one. A checkpoint
// cosigned by enough independent witnesses cannot be one of two forks the log
// operator shows to different people: each witness would have had to cosign
// both, and none does. The cosignature/v1 signature also carries the time the
// witness saw the checkpoint, which a C2SP checkpoint does not.
//
// # Client
//
// [Cosigner] asks the witnesses of a policy to cosign a checkpoint with
// add-checkpoint (old size, consistency proof, checkpoint), follows a 409
// answer's size, and returns the checkpoint with enough cosignature lines
// appended to meet the policy. Every refusal is an [*Error] that says what
// was submitted and what the witness answered; [ErrInconsistent] is the one
// that means a fork. The ledger backends use a Cosigner to witness each
// checkpoint they publish (ledger.Cosigner).
//
// The policy is a Group of github.com/transparency-dev/formats/witness,
// usually parsed from the witness policy file format Sigsum, Tessera and
// torchwood share:
//
//	witness w1 witness.example/w1+7a6c8e1d+BASE64KEY https://w1.witness.example
//	witness w2 witness.example/w2+b2f9a410+BASE64KEY https://w2.witness.example
//	group both 2 w1 w2
//	quorum both
//
// # Server
//
// [Server] is a witness of keytrail's own: an http.Handler for
// add-checkpoint that keeps its state (size and root per origin) in a JSON
// file, written and synced before it answers. It is what `keytrail witness
// serve` and the demo run; any other tlog-witness implementation (torchwood's
// litewitness, for one) works with the Cosigner the same way.
package witness
