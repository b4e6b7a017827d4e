package tpm_test

import "crypto"

type cryptoHash = crypto.Hash

const sha256Hash = crypto.SHA256
