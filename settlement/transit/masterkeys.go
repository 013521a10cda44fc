package transit

import "github.com/tapswitch/tapswitch/internal/keyfile"

// The operators' master key file: one line per transit operator,
// "OPERATOR: KEY", the operator code (4 digits) and 32 random bytes in
// standard base64, mode 0600, the format of the acquirer key file
// (internal/keyfile, docs/keys.md). A card's purse key is derived from its
// operator's master (PurseKey); settle holds the file to verify TACs.
var masterKeyFile = keyfile.Format{
	What:        "operator keys",
	IDName:      "OPERATOR",
	ValidID:     ValidOperator,
	CreateHint:  "for the transit members' operators with: tapctl keys init-operators",
	TempPattern: ".operator-keys-*",
}

// LoadMasterKeys reads the operators' master key file: master keys by
// operator code.
func LoadMasterKeys(path string) (map[string][]byte, error) {
	return masterKeyFile.Load(path)
}

// CreateMasterKeysFile writes a new random master key for each operator
// code to path, mode 0600. It never replaces a file (an error wrapping
// fs.ErrExist): every purse of an operator holds a key derived from its
// master.
func CreateMasterKeysFile(path string, operators []string) error {
	return masterKeyFile.Create(path, operators)
}
