package node

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
)

// adminHandler serves the operator endpoints (listeners.go); the token
// API and the lost-phone page are on the public listener.
func (n *Node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", n.ready)
	mux.Handle("GET /metrics", n.metrics.Handler())
	mux.HandleFunc("/admin/rotate", n.RotateHandler) // PAN key rotation: docs/keys.md
	if n.cfg.CloseDayOnDemand {
		// Development only (switchd -dev): a production day closes at its
		// cut-off, and without the flag the path does not exist.
		mux.HandleFunc("POST /admin/close-day", n.closeDay)
	}
	if n.cfg.AdminPprof {
		// Profiles are how performance work finds where a transaction's time
		// goes; they expose no card data but cost CPU while taken, so they
		// are opt-in (switchd -dev turns them on).
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// ready is 200 when the switch can approve something: at least one issuer
// link is signed on. The body lists every link's state.
func (n *Node) ready(w http.ResponseWriter, _ *http.Request) {
	links := make(map[string]string, len(n.links))
	anyUp := false
	for _, l := range n.links {
		state := "down"
		if l.Up() {
			state, anyUp = "up", true
		}
		links[l.IssuerID()] = state
	}
	w.Header().Set("Content-Type", "application/json")
	if !anyUp {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"ready": anyUp, "issuer_links": links})
}

// LinksUp counts the issuer links with at least one signed-on connection.
func (n *Node) LinksUp() int {
	up := 0
	for _, l := range n.links {
		if l.Up() {
			up++
		}
	}
	return up
}
