package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tapswitch/tapswitch/switch/vault"
)

// RotationStatus is the JSON of POST and GET /admin/rotate.
type RotationStatus struct {
	Running bool `json:"running"`
	// Done counts the records re-sealed so far; Total those found under an
	// older key version when the re-seal started (it grows if the keyring
	// changes again mid-way).
	Done  int `json:"done"`
	Total int `json:"total"`
	// Versions counts the vault's records per data key version ("v1": n).
	// While a rotation runs it is the count from its start; otherwise it is
	// counted afresh for each GET.
	Versions map[string]int `json:"versions"`
	// Keyring lists the data key versions the vault holds; the last seals.
	Keyring  []uint16  `json:"keyring"`
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// rotation is a node's one key rotation, past or running.
type rotation struct {
	mu sync.Mutex
	st RotationStatus
}

func (n *Node) rotation() *rotation { return &n.rotating }

// RotateHandler serves /admin/rotate. POST reloads the key file the node
// was configured with (key_env, else key_file), swaps the keyring into the
// vault (new PANs are sealed under its highest version at once) and starts
// re-sealing the vault's older records in the background: 202 and the
// status. A second POST while one runs is 409, as is a key file the vault
// refuses (another index key or token master, a version dropped that
// records still use);
// a key file that cannot be read is 500. GET returns the status.
//
// A key_env keyring cannot change without a restart (the environment is
// fixed at start); POST then only re-seals what is under older versions.
func (n *Node) RotateHandler(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		st, err := n.rotationStatus()
		if err != nil {
			n.log.Error().Err(err).Msg("key rotation: counting versions")
			writeRotateJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeRotateJSON(w, http.StatusOK, st)
	case http.MethodPost:
		n.startRotation(w)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeRotateJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET or POST"})
	}
}

func (n *Node) startRotation(w http.ResponseWriter) {
	rot := n.rotation()
	rot.mu.Lock()
	defer rot.mu.Unlock()
	if rot.st.Running {
		writeRotateJSON(w, http.StatusConflict, map[string]any{"error": "a key rotation is already running", "status": rot.st})
		return
	}
	keys, err := n.loadKeys()
	if err != nil {
		n.log.Error().Err(err).Msg("key rotation: loading the key file")
		writeRotateJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if err := n.Vault.SetKeyring(keys); err != nil {
		n.log.Error().Err(err).Msg("key rotation: key file refused")
		writeRotateJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	counts, err := n.Vault.VersionCounts()
	if err != nil {
		n.log.Error().Err(err).Msg("key rotation: counting versions")
		writeRotateJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	rot.st = RotationStatus{
		Running: true, Versions: versionNames(counts), Keyring: keys.Versions(), Started: time.Now().UTC(),
	}
	n.log.Info().Str("keyring", keys.String()).Any("records", rot.st.Versions).Msg("key rotation started")
	go n.runRekey(rot)
	writeRotateJSON(w, http.StatusAccepted, rot.st)
}

// runRekey runs the vault's Rekey and records its outcome. Vault.Close cancels
// it, so Shutdown needs no part in stopping it.
func (n *Node) runRekey(rot *rotation) {
	done, err := n.Vault.Rekey(context.Background(), vault.RekeyBatchDefault, func(done, total int) {
		rot.mu.Lock()
		rot.st.Done, rot.st.Total = done, total
		rot.mu.Unlock()
	})
	rot.mu.Lock()
	defer rot.mu.Unlock()
	rot.st.Running, rot.st.Done, rot.st.Finished = false, done, time.Now().UTC()
	if err != nil {
		rot.st.Error = err.Error()
		if errors.Is(err, context.Canceled) {
			rot.st.Error = "stopped by shutdown; POST /admin/rotate again to finish"
		}
		n.log.Error().Err(err).Int("resealed", done).Msg("key rotation stopped")
		return
	}
	n.log.Info().Int("resealed", done).Msg("key rotation complete: no record is under an older key version")
}

// rotationStatus is the last rotation's status, with the record counts
// taken now unless a rotation is running (counting reads every record).
func (n *Node) rotationStatus() (RotationStatus, error) {
	rot := n.rotation()
	rot.mu.Lock()
	st := rot.st
	rot.mu.Unlock()
	st.Keyring = n.Vault.Keys().Versions()
	if st.Running {
		return st, nil
	}
	counts, err := n.Vault.VersionCounts()
	if err != nil {
		return st, err
	}
	st.Versions = versionNames(counts)
	return st, nil
}

func versionNames(counts map[uint16]int) map[string]int {
	out := make(map[string]int, len(counts))
	for ver, c := range counts {
		out[fmt.Sprintf("v%d", ver)] = c
	}
	return out
}

func writeRotateJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}
