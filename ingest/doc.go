// Package ingest is the client side of keytrail's ingestion API (docs/api.md):
// the request and response formats of POST /v1/entries, a Client that submits
// signed DSSE envelopes with retries and backoff, and a Spool, a local
// directory that keeps envelopes durably and in order while the server is
// unreachable and sends them later.
//
// The server (keytrail serve) is exactly-once: an envelope submitted again
// gets the index it was first given. The Spool relies on that: it deletes an
// envelope only after the server has acknowledged it, so a crash between the
// acknowledgement and the delete sends the envelope again and the server
// answers with the same index; nothing is lost and nothing is logged twice.
//
// # Using it from a collector
//
//	c, _ := ingest.NewClient("https://keytrail.example:8443", nil)
//	sp, _ := ingest.OpenSpool("/var/spool/keytrail-collector")
//	defer sp.Close()
//	env, _ := evidence.SignStatement(ctx, st, signer)
//	res, err := sp.Push(ctx, c, env) // sent now, or kept and sent by a later Push or Drain
//
// The collectors of package collectors produce envelopes; this package only
// carries them.
package ingest
