package verify

// VerifyConsistency exposes verifyConsistency to the external tests, which
// check its binding to the checkpoints' sizes directly (ATTACKS.md cases 2-4).
var VerifyConsistency = verifyConsistency
