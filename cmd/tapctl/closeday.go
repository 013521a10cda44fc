package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/switch/node"
)

// runCloseDay is tapctl close-day: close and seal the open business day of
// a switchd -dev now, so that settle can run on it (README, "Settling a
// day"). A switch not started with -dev has no such endpoint and says 404.
func runCloseDay(args []string, stdout, stderr io.Writer) int {
	fs := cli.New("tapctl close-day", "Closes and seals a switchd -dev's open business day now, so settle can run on it.", stdout, stderr)
	admin := fs.String("admin", DefaultAdmin, "the switch's admin (operator) listener `HOST:PORT`")
	tokenFile := fs.String("admin-token-file", "", "`FILE` holding the admin bearer token (the switch's admin_token_file)")
	fs.Alias("token-file", "admin-token-file")
	if err := fs.Parse(args); err != nil {
		return parseFailed(fs, err, stderr)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+*admin+"/admin/close-day", nil)
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "tapctl close-day: -admin-token-file: %v\n", err)
			return 2
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	}
	closed, err := closeDay(req)
	if err != nil {
		fmt.Fprintf(stderr, "tapctl close-day: %v\n", err)
		return 1
	}
	data := filepath.Dir(filepath.Dir(closed.SealedFile))
	date := closed.Day[:4] + "-" + closed.Day[4:6] + "-" + closed.Day[6:]
	fmt.Fprintf(stdout, "closed and sealed business day %s on %s (%s); new entries belong to %s\n"+
		"settle it:  go run ./cmd/settle -date %s -journals %s -keys %s -out ./clearing\n",
		closed.Day, closed.Node, closed.SealedFile, closed.NextDay, date, data, filepath.Join(data, "dev-settle.keys"))
	return 0
}

func closeDay(req *http.Request) (node.ClosedDay, error) {
	var closed node.ClosedDay
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return closed, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, responseBytesMax))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return closed, fmt.Errorf("%s does not close days on demand: only switchd -dev does; a production day closes at its cut-off", req.URL.Host)
	case resp.StatusCode != http.StatusOK:
		return closed, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return closed, json.Unmarshal(body, &closed)
}
