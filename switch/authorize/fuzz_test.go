package authorize

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/iso8583"
)

// FuzzParseRequest feeds arbitrary frames through the codec into the
// request and reversal parsers and the pure decisions (the cryptogram check
// included): none may panic, a request they accept must carry a
// well-formed duplicate key, and a DE55 that passes spends a counter.
func FuzzParseRequest(f *testing.F) {
	tap := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: "000000", Token: "6299901234567893",
		TokenExpiry: "2912", Amount: 1234, STAN: "000042", Time: time.Date(2026, 11, 25, 3, 4, 5, 0, time.UTC)}
	seed, _ := iso8583.Pack(tap.Message())
	f.Add(seed)
	tap.Key, tap.ATC = testTokenKey, 7
	signedSeed, _ := iso8583.Pack(tap.Message())
	f.Add(signedSeed)
	rev := tap.Message()
	rev.MTI("0400")
	rev.Field(iso8583.FieldOriginalData, "020000004111250304050000102000000000000000")
	if b, err := iso8583.Pack(rev); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		msg, err := iso8583.Unpack(frame)
		if err != nil {
			return
		}
		checkParseFieldsAgrees(t, frame, msg)
		if req, err := ParseRequest(msg); err == nil {
			k := req.Key()
			if len(k.STAN) != 6 || len(k.TransmissionTime) != 10 || k.TerminalID == "" {
				t.Fatalf("accepted request with key %+v", k)
			}
			CheckRequest(req)
			if v := CheckCryptogram(req, testChip()); v.RC == "" && len(req.ICC) > 0 && v.Counter == 0 {
				t.Fatalf("cryptogram passed without spending a counter")
			}
		}
		if r, err := ParseReversal(msg); err == nil && r.Original == r.Key() {
			t.Fatalf("reversal of itself accepted: %+v", r.Original)
		}
		EchoAnswer(msg, iso8583.RCFormatError)
	})
}

// checkParseFieldsAgrees holds the hot path's reading of a frame to the
// reference one: ParseFields on the frame parsed in place gives the same
// Request, or the same refusal, as ParseRequest on it unpacked by moov; and
// the answer to it packs to the same bytes with a Builder as with moov.
func checkParseFieldsAgrees(t *testing.T, frame []byte, msg *moov.Message) {
	t.Helper()
	var fields iso8583.Fields
	if err := fields.Parse(frame); err != nil {
		t.Fatalf("Unpack accepted %q, Fields.Parse: %v", frame, err)
	}
	want, wantErr := ParseRequest(msg)
	got, gotErr := ParseFields(&fields)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("frame %q: ParseFields says %v, ParseRequest %v", frame, gotErr, wantErr)
	}
	if wantErr != nil || (want.MTI != iso8583.MTIAuthRequest && want.MTI != iso8583.MTIFinancialRequest) {
		return // HandleRequest takes only these
	}
	if len(want.ICC) == 0 && len(got.ICC) == 0 {
		want.ICC, got.ICC = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("frame %q:\nParseFields  %#v\nParseRequest %#v", frame, got, want)
	}
	echo, err := iso8583.Pack(EchoAnswer(msg, "96"))
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range []Answer{answer(got, "05", "123456"), {Request: got, RC: "96", echo: true}, {Request: got, RC: "00", AuthCode: "A1", Balance: "1002156C000000001000"}} {
		var b iso8583.Builder
		a.Build(&b)
		fast, err := b.Append(nil)
		slow, err2 := iso8583.Pack(a.Message())
		if err != nil || err2 != nil || !bytes.Equal(fast, slow) {
			t.Fatalf("answer %+v: Builder %q (%v), moov %q (%v)", a, fast, err, slow, err2)
		}
		if i == 1 && !bytes.Equal(fast, echo) {
			t.Fatalf("refusal of %q: Builder %q, EchoAnswer %q", frame, fast, echo)
		}
	}
}
