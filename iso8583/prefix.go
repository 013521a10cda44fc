package iso8583

import "fmt"

// strictASCIILength is the LLVAR/LLLVAR length prefix of the wire contract:
// exactly digits ASCII decimal digits. moov's own ASCII prefixer parses with
// strconv.Atoi, which also takes "+5"; such a frame would not pack back to the
// same bytes, so the network refuses it as a format error.
type strictASCIILength struct {
	digits int
}

func (p strictASCIILength) EncodeLength(maxLen, dataLen int) ([]byte, error) {
	if dataLen > maxLen {
		return nil, fmt.Errorf("field length %d is larger than maximum %d", dataLen, maxLen)
	}
	out := make([]byte, p.digits)
	n := dataLen
	for i := p.digits - 1; i >= 0; i-- {
		out[i] = byte('0' + n%10)
		n /= 10
	}
	if n != 0 {
		return nil, fmt.Errorf("field length %d does not fit %d digits", dataLen, p.digits)
	}
	return out, nil
}

func (p strictASCIILength) DecodeLength(maxLen int, data []byte) (int, int, error) {
	if len(data) < p.digits {
		return 0, 0, fmt.Errorf("need %d length digits, have %d bytes", p.digits, len(data))
	}
	n := 0
	for _, c := range data[:p.digits] {
		if c < '0' || c > '9' {
			return 0, 0, fmt.Errorf("length prefix %q is not %d digits", data[:p.digits], p.digits)
		}
		n = n*10 + int(c-'0')
	}
	if n > maxLen {
		return 0, 0, fmt.Errorf("field length %d is larger than maximum %d", n, maxLen)
	}
	return n, p.digits, nil
}

func (p strictASCIILength) Inspect() string {
	return fmt.Sprintf("ASCII.%d-digit", p.digits)
}
