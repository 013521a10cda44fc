package issuersim

import (
	"encoding/json"
	"net/http"
)

// adminBodyBytesMax bounds a request body of the admin endpoint: a Faults
// document is a few hundred bytes.
const adminBodyBytesMax = 4096

// AdminHandler serves the fleet's operator and test endpoints:
//
//	GET  /healthz                  200 "ok"
//	GET  /status[?issuer=ID]       {"issuers": [IssuerStatus...]}
//	GET  /ledger                   {"issuers": [Snapshot...]}  (FleetSnapshot)
//	GET  /ledger?issuer=ID         Snapshot, as in ledger-ID.json
//	POST /faults?issuer=ID|*       body: Faults JSON, replacing the faults whole
//	POST /down?issuer=ID|*         Issuer.Down
//	POST /up?issuer=ID|*           Issuer.Up
//
// The POSTs need the issuer parameter ("*" for all, so no drill takes the
// whole fleet down by leaving it out) and answer with the status of the
// issuers they changed. An unknown issuer is 404, a bad body 400.
func (f *Fleet) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		f.writeStatus(w, issuerParam(r, AllIssuers))
	})
	mux.HandleFunc("GET /ledger", f.serveLedger)
	mux.HandleFunc("POST /faults", f.serveFaults)
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, r *http.Request) {
		f.serveChange(w, r, f.Down)
	})
	mux.HandleFunc("POST /up", func(w http.ResponseWriter, r *http.Request) {
		f.serveChange(w, r, f.Up)
	})
	return mux
}

func issuerParam(r *http.Request, missing string) string {
	if id := r.URL.Query().Get("issuer"); id != "" {
		return id
	}
	return missing
}

func (f *Fleet) serveLedger(w http.ResponseWriter, r *http.Request) {
	id := issuerParam(r, AllIssuers)
	snap, err := f.Snapshot(id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if id == AllIssuers {
		writeJSON(w, snap)
		return
	}
	writeJSON(w, snap.Issuers[0])
}

func (f *Fleet) serveFaults(w http.ResponseWriter, r *http.Request) {
	id, ok := requireIssuer(w, r, f)
	if !ok {
		return
	}
	var faults Faults
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, adminBodyBytesMax))
	if err := dec.Decode(&faults); err != nil {
		http.Error(w, "issuersim: faults body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := f.SetFaults(id, faults); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.writeStatus(w, id)
}

func (f *Fleet) serveChange(w http.ResponseWriter, r *http.Request, change func(string) error) {
	id, ok := requireIssuer(w, r, f)
	if !ok {
		return
	}
	if err := change(id); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	f.writeStatus(w, id)
}

// requireIssuer reads the issuer parameter a POST must carry and checks it
// names an issuer, answering the error itself when not.
func requireIssuer(w http.ResponseWriter, r *http.Request, f *Fleet) (string, bool) {
	id := issuerParam(r, "")
	if id == "" {
		http.Error(w, `issuersim: issuer parameter missing (an ID, or "*" for all)`, http.StatusBadRequest)
		return "", false
	}
	if _, err := f.pick(id); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return "", false
	}
	return id, true
}

func (f *Fleet) writeStatus(w http.ResponseWriter, id string) {
	st, err := f.Status(id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	writeJSON(w, struct {
		Issuers []IssuerStatus `json:"issuers"`
	}{st})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	// Encoding these types cannot fail; a failed write leaves the client a
	// truncated body, which its decoder reports.
	_ = json.NewEncoder(w).Encode(v)
}
