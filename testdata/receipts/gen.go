//go:build ignore

// gen writes sample signing-receipt logs, as a wallet signer would write them
// (JSON Lines, collectors/receipts.Line), with real signatures by fixed test
// keys, and the keys that verify them. Every key derives from a fixed seed and
// every signature is deterministic (RFC 6979 for ECDSA, RFC 8032 for Ed25519),
// so the output is the same byte for byte on every run:
//
//	go run ./testdata/receipts/gen.go             # writes testdata/receipts/
//	go run ./testdata/receipts/gen.go -out DIR    # writes DIR/
//
// collectors/receipts' TestGeneratorReproducible runs it and compares.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	dcrdecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"

	"github.com/keytrail/keytrail/collectors/receipts"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify/receipt"
)

const seed = "keytrail testdata receipts v1"

func derive(name string) []byte {
	s := sha256.Sum256([]byte(seed + "\x00" + name))
	return s[:]
}

// The wallet keys and their IDs.
const (
	ethKeyID  = "kms:eu-central-1/custody/eth-hot-1/v3"
	btcKeyID  = "hsm:luna-eu-1/custody/btc-treasury-1"
	solKeyID  = "kms:eu-central-1/custody/sol-hot-1/v1"
	p256KeyID = "kms:eu-central-1/settlement/signer-1/v2"
)

var (
	ethKey  = secp256k1.PrivKeyFromBytes(derive("eth-hot-1"))
	btcKey  = secp256k1.PrivKeyFromBytes(derive("btc-treasury-1"))
	solKey  = ed25519.NewKeyFromSeed(derive("sol-hot-1"))
	p256Key = func() *ecdsa.PrivateKey {
		for i := 0; ; i++ {
			k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), derive(fmt.Sprintf("settlement-signer-1/%d", i)))
			if err == nil {
				return k
			}
		}
	}()
	start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
)

func main() {
	out := flag.String("out", filepath.Join("testdata", "receipts"), "directory to write into")
	flag.Parse()
	files := map[string][]byte{
		"keys.json":      keysJSON(),
		"ethereum.jsonl": jsonl(ethereum()),
		"bitcoin.jsonl":  jsonl(bitcoin()),
		"solana.jsonl":   jsonl(solana()),
		"p256.jsonl":     jsonl(p256()),
		"high-s.jsonl":   jsonl(highS()),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// KeyEntry is one key of keys.json.
type KeyEntry struct {
	KeyID      string `json:"keyId"`
	Scheme     string `json:"scheme"`
	PublicKey  string `json:"publicKey"`
	SPKISHA256 string `json:"spkiSha256"`
	Address    string `json:"address,omitempty"`
}

func keysJSON() []byte {
	var entries []KeyEntry
	for _, k := range []struct {
		id     string
		scheme receipt.Scheme
		pub    crypto.PublicKey
	}{
		{ethKeyID, receipt.SchemeSecp256k1RSV, ethKey.PubKey()},
		{btcKeyID, receipt.SchemeSecp256k1DER, btcKey.PubKey()},
		{solKeyID, receipt.SchemeEd25519, solKey.Public()},
		{p256KeyID, receipt.SchemeP256DER, &p256Key.PublicKey},
	} {
		key, err := receipt.NewKey(k.scheme, k.pub)
		if err != nil {
			log.Fatal(err)
		}
		p, err := key.MarshalKeyPEM()
		if err != nil {
			log.Fatal(err)
		}
		e := KeyEntry{KeyID: k.id, Scheme: string(k.scheme), PublicKey: string(p), SPKISHA256: key.Digest()}
		if k.scheme == receipt.SchemeSecp256k1RSV {
			e.Address = key.Address()
		}
		entries = append(entries, e)
	}
	b, err := strictjson.MarshalIndent(entries)
	if err != nil {
		log.Fatal(err)
	}
	return append(b, '\n')
}

func jsonl(lines []receipts.Line) []byte {
	var out []byte
	for _, l := range lines {
		b, err := strictjson.Marshal(l)
		if err != nil {
			log.Fatal(err)
		}
		out = append(append(out, b...), '\n')
	}
	return out
}

func at(d time.Duration) string { return evidence.FormatTime(start.Add(d)) }

func keccak(parts ...[]byte) []byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// RLP (Ethereum Yellow Paper, Appendix B), for byte strings, unsigned integers
// and lists: all a transaction needs.
func rlpLength(offset byte, n int) []byte {
	if n < 56 {
		return []byte{offset + byte(n)}
	}
	lb := trimZeros(binary.BigEndian.AppendUint64(nil, uint64(n)))
	return append([]byte{offset + 55 + byte(len(lb))}, lb...)
}

func rlpBytes(b []byte) []byte {
	if len(b) == 1 && b[0] < 0x80 {
		return b
	}
	return append(rlpLength(0x80, len(b)), b...)
}

func rlpUint(u uint64) []byte { return rlpBytes(trimZeros(binary.BigEndian.AppendUint64(nil, u))) }

func rlpBig(b []byte) []byte { return rlpBytes(trimZeros(b)) }

func rlpList(items ...[]byte) []byte {
	var body []byte
	for _, it := range items {
		body = append(body, it...)
	}
	return append(rlpLength(0xc0, len(body)), body...)
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func addr(name string) []byte { return derive("address " + name)[:20] }

const gwei = 1_000_000_000

// ethSign signs a 32-byte hash and returns r, s and the y parity.
func ethSign(hash []byte) (r, s []byte, parity byte) {
	c := dcrdecdsa.SignCompact(ethKey, hash, false) // 27+parity, r, s
	return c[1:33], c[33:65], c[0] - 27
}

func rsv(r, s []byte, v byte) string {
	return hex.EncodeToString(append(append(append([]byte(nil), r...), s...), v))
}

type tx struct {
	chainID, nonce, tip, fee, gas, value uint64
	to, data                             []byte
}

// eip1559 signs a type-2 transaction (EIP-1559) and returns its signing hash,
// r, s, y parity and transaction hash.
func eip1559(t tx) (hash, r, s []byte, parity byte, txHash []byte) {
	fields := [][]byte{rlpUint(t.chainID), rlpUint(t.nonce), rlpUint(t.tip), rlpUint(t.fee), rlpUint(t.gas),
		rlpBytes(t.to), rlpUint(t.value), rlpBytes(t.data), rlpList()}
	hash = keccak([]byte{2}, rlpList(fields...))
	r, s, parity = ethSign(hash)
	signed := rlpList(append(fields, rlpUint(uint64(parity)), rlpBig(r), rlpBig(s))...)
	return hash, r, s, parity, keccak([]byte{2}, signed)
}

// legacy155 signs a legacy transaction with EIP-155 replay protection and
// returns its signing hash, r, s, v and transaction hash.
func legacy155(t tx) (hash, r, s []byte, v byte, txHash []byte) {
	fields := [][]byte{rlpUint(t.nonce), rlpUint(t.fee), rlpUint(t.gas), rlpBytes(t.to), rlpUint(t.value), rlpBytes(t.data)}
	hash = keccak(rlpList(append(fields, rlpUint(t.chainID), rlpUint(0), rlpUint(0))...))
	r, s, parity := ethSign(hash)
	v = byte(t.chainID*2+35) + parity
	return hash, r, s, v, keccak(rlpList(append(fields, rlpUint(uint64(v)), rlpBig(r), rlpBig(s))...))
}

func erc20Transfer(to []byte, amount uint64) []byte {
	data := []byte{0xa9, 0x05, 0x9c, 0xbb} // transfer(address,uint256)
	data = append(data, make([]byte, 12)...)
	data = append(data, to...)
	return append(data, new(big.Int).SetUint64(amount).FillBytes(make([]byte, 32))...)
}

func ethereum() []receipts.Line {
	line := func(i int, hash []byte, sig string, operator, chain string, txHash []byte) receipts.Line {
		l := receipts.Line{
			KeyID: ethKeyID, Digest: hex.EncodeToString(hash), Signature: sig, Scheme: string(receipt.SchemeSecp256k1RSV),
			Operator: operator, RequestID: fmt.Sprintf("eth-hot-1/2026-03-02/%06d", 4100+i), Chain: chain,
			Time: at(time.Duration(i)*17*time.Minute + time.Duration(i*137)*time.Millisecond),
		}
		if txHash != nil {
			l.TxHash = "0x" + hex.EncodeToString(txHash)
		}
		return l
	}
	var lines []receipts.Line
	// An ETH transfer, type 2, v as the y parity (as KMS-backed signers report it).
	h, r, s, p, th := eip1559(tx{chainID: 1, nonce: 41, tip: 1_500_000_000, fee: 40 * gwei, gas: 21000, to: addr("exchange-deposit"), value: 250_000_000_000_000_000})
	lines = append(lines, line(1, h, rsv(r, s, p), "treasury-rebalancer", "eip155:1", th))
	// A USDC transfer (ERC-20 call), type 2, v = 27 + y parity (as web3 libraries report it).
	usdc := mustHex("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")
	h, r, s, p, th = eip1559(tx{chainID: 1, nonce: 42, tip: 2 * gwei, fee: 45 * gwei, gas: 65000, to: usdc, data: erc20Transfer(addr("payee-7"), 1_250_000_000)})
	lines = append(lines, line(2, h, rsv(r, s, 27+p), "alice@custody.example", "eip155:1", th))
	// A legacy transaction with EIP-155 v (37/38 on chain 1).
	h, r, s, v, th := legacy155(tx{chainID: 1, nonce: 43, fee: 38 * gwei, gas: 21000, to: addr("cold-wallet"), value: 5_000_000_000_000_000_000})
	lines = append(lines, line(3, h, rsv(r, s, v), "treasury-rebalancer", "eip155:1", th))
	// personal_sign (EIP-191) of a proof-of-control message: no transaction.
	msg := "keytrail proof of control: kms:eu-central-1/custody/eth-hot-1/v3 at 2026-03-02"
	h = keccak([]byte(fmt.Sprintf("\x19Ethereum Signed Message:\n%d%s", len(msg), msg)))
	r, s, p = ethSign(h)
	lines = append(lines, line(4, h, rsv(r, s, 27+p), "bob@custody.example", "", nil))
	// A type-2 transfer on Optimism (chain 10).
	h, r, s, p, th = eip1559(tx{chainID: 10, nonce: 7, tip: 1_000_000, fee: 2_000_000, gas: 21000, to: addr("bridge-payout"), value: 100_000_000_000_000_000})
	lines = append(lines, line(5, h, rsv(r, s, p), "treasury-rebalancer", "eip155:10", th))
	// A legacy EIP-155 transaction on BNB Smart Chain (chain 56: v = 147/148).
	h, r, s, v, th = legacy155(tx{chainID: 56, nonce: 3, fee: 3 * gwei, gas: 21000, to: addr("exchange-deposit"), value: 2_000_000_000_000_000_000})
	lines = append(lines, line(6, h, rsv(r, s, v), "treasury-rebalancer", "eip155:56", th))
	return lines
}

func sha256d(b []byte) []byte {
	h := sha256.Sum256(b)
	h = sha256.Sum256(h[:])
	return h[:]
}

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

// bitcoin receipts: DER signatures over sighashes. The sighashes are
// double SHA-256 of labelled stand-ins, not of real transactions.
func bitcoin() []receipts.Line {
	var lines []receipts.Line
	for i := 1; i <= 4; i++ {
		sighash := sha256d([]byte(fmt.Sprintf("keytrail testdata: bitcoin sighash %d", i)))
		txid := reversed(sha256d([]byte(fmt.Sprintf("keytrail testdata: bitcoin tx %d", i))))
		lines = append(lines, receipts.Line{
			KeyID: btcKeyID, Digest: hex.EncodeToString(sighash),
			Signature: hex.EncodeToString(dcrdecdsa.Sign(btcKey, sighash).Serialize()),
			Scheme:    string(receipt.SchemeSecp256k1DER), Operator: "cold-storage-ceremony",
			RequestID: fmt.Sprintf("btc-treasury-1/2026-03-02/%04d", i), Chain: "bip122:000000000019d6689c085ae165831e93",
			TxHash: hex.EncodeToString(txid), Time: at(time.Duration(i) * 41 * time.Minute),
		})
	}
	return lines
}

// solana receipts: Ed25519 signatures over legacy transaction messages of one
// System Program transfer each; the digest is the message.
func solana() []receipts.Line {
	from := solKey.Public().(ed25519.PublicKey)
	var lines []receipts.Line
	for i := 1; i <= 3; i++ {
		to := derive(fmt.Sprintf("solana payee %d", i))
		blockhash := derive(fmt.Sprintf("solana blockhash %d", i))
		msg := []byte{1, 0, 1, 3} // header: 1 signer, 0 read-only signed, 1 read-only unsigned; 3 accounts
		msg = append(msg, from...)
		msg = append(msg, to...)
		msg = append(msg, make([]byte, 32)...) // System Program, 11111111111111111111111111111111
		msg = append(msg, blockhash...)
		data := binary.LittleEndian.AppendUint32(nil, 2) // SystemInstruction::Transfer
		data = binary.LittleEndian.AppendUint64(data, uint64(i)*1_500_000_000)
		msg = append(msg, 1, 2, 2, 0, 1, byte(len(data))) // 1 instruction: program 2, accounts [0, 1]
		msg = append(msg, data...)
		sig := ed25519.Sign(solKey, msg)
		lines = append(lines, receipts.Line{
			KeyID: solKeyID, Digest: hex.EncodeToString(msg), Signature: hex.EncodeToString(sig),
			Scheme: string(receipt.SchemeEd25519), Operator: "treasury-rebalancer",
			RequestID: fmt.Sprintf("sol-hot-1/2026-03-02/%05d", 900+i), Chain: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
			TxHash: base58(sig), Time: at(time.Duration(i)*23*time.Minute + 500*time.Millisecond),
		})
	}
	return lines
}

// p256 receipts: a settlement system's instructions, signed by a KMS P-256
// key over their SHA-256.
func p256() []receipts.Line {
	var lines []receipts.Line
	for i := 1; i <= 3; i++ {
		instr := fmt.Sprintf(`{"instruction":"settle","batch":"2026-03-02-%02d","amount":"%d.00","currency":"EUR"}`, i, 250000*i)
		d := sha256.Sum256([]byte(instr))
		sig, err := p256Key.Sign(nil, d[:], crypto.SHA256) // nil rand: deterministic (RFC 6979)
		if err != nil {
			log.Fatal(err)
		}
		lines = append(lines, receipts.Line{
			KeyID: p256KeyID, Digest: hex.EncodeToString(d[:]), Signature: hex.EncodeToString(sig),
			Scheme: string(receipt.SchemeP256DER), Operator: "settlement-engine",
			RequestID: fmt.Sprintf("settlement/2026-03-02/%02d", i), Time: at(time.Duration(i) * time.Hour),
		})
	}
	return lines
}

// highS: genuine signatures replaced by their high-S twins (r, n-s), which
// verify but which no Ethereum or Bitcoin signer makes (ATTACKS.md case 28).
func highS() []receipts.Line {
	n := secp256k1.Params().N
	twin := func(s []byte) []byte {
		return new(big.Int).Sub(n, new(big.Int).SetBytes(s)).FillBytes(make([]byte, 32))
	}
	eth := ethereum()[0]
	sig := mustHex(eth.Signature)
	eth.Signature = rsv(sig[:32], twin(sig[32:64]), sig[64]^1)
	eth.RequestID += "-high-s"

	btc := bitcoin()[0]
	der, err := dcrdecdsa.ParseDERSignature(mustHex(btc.Signature))
	if err != nil {
		log.Fatal(err)
	}
	r, s := der.R(), der.S()
	rb, sb := r.Bytes(), s.Bytes()
	btc.Signature = hex.EncodeToString(derSig(rb[:], twin(sb[:])))
	btc.RequestID += "-high-s"
	return []receipts.Line{eth, btc}
}

// derSig is the DER of SEQUENCE { r, s } for 32-byte big-endian r and s.
func derSig(r, s []byte) []byte {
	integer := func(b []byte) []byte {
		b = trimZeros(b)
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{0x02, byte(len(b))}, b...)
	}
	body := append(integer(r), integer(s)...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// base58 is Bitcoin's Base58 alphabet, as Solana spells signatures.
func base58(b []byte) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	x := new(big.Int).SetBytes(b)
	var out []byte
	mod := new(big.Int)
	for x.Sign() > 0 {
		x.DivMod(x, big.NewInt(58), mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}
