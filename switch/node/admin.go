package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/tapswitch/tapswitch/settlement/transit"
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
	// The transit blacklist (docs/transit.md): the gates' operators fetch
	// the current version; the clearing adds the cloned purses it found.
	mux.HandleFunc("GET /admin/transit/blacklist", n.transitBlacklist)
	mux.HandleFunc("POST /admin/transit/blacklist", n.transitBlacklistAdd)
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
// link is signed on and, in a cluster, its last heartbeat reached the NATS
// quorum within the heartbeat TTL. The body lists every link's state (and
// the cluster's nodes alive).
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
	body := map[string]any{"ready": anyUp, "issuer_links": links}
	if n.members != nil { // a node cut off from the quorum approves nothing: HAProxy moves its terminals
		alive, quorum := n.members.Alive()
		body["cluster_nodes_alive"], body["cluster_quorum"] = alive, quorum
		body["ready"] = anyUp && quorum
	}
	w.Header().Set("Content-Type", "application/json")
	if body["ready"] != true {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(body)
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

// transitBlacklist serves the current transit blacklist file.
func (n *Node) transitBlacklist(w http.ResponseWriter, _ *http.Request) {
	file, err := n.Tokens.TransitBlacklist(n.Journal.BusinessDayOf(time.Now()))
	if err != nil {
		n.log.Error().Err(err).Msg("transit blacklist")
		http.Error(w, "the blacklist could not be read; see the switch log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(file)
}

// transitBlacklistAdd takes {"cards": [...], "reason": "clone"}: the cards
// the clearing found cloned or tampered with (settle's blacklist output).
func (n *Node) transitBlacklistAdd(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Cards  []string                `json:"cards"`
		Reason transit.BlacklistReason `json:"reason"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || (body.Reason != transit.ReasonClone && body.Reason != transit.ReasonLost) {
		http.Error(w, `want {"cards": ["9910..."], "reason": "clone"}`, http.StatusBadRequest)
		return
	}
	added, err := n.Tokens.BlacklistCards(body.Cards, body.Reason)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.log.Warn().Int("added", added).Str("reason", string(body.Reason)).Msg("transit cards blacklisted by the clearing")
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"added\": %d}\n", added)
}
