package iso8583

import "testing"

func TestParseDecimalAmount(t *testing.T) {
	tests := []struct {
		in   string
		want Amount
	}{
		{"12.34", 1234},
		{"12", 1200},
		{"0.5", 50},
		{"0.05", 5},
		{"12.3", 1230},
		{"0", 0},
		{"0.00", 0},
		{"007.10", 710},
		{"25.99", 2599},
		{"9999999999.99", 999999999999}, // the largest DE4 holds
	}
	for _, tt := range tests {
		got, err := ParseDecimalAmount(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDecimalAmount(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDecimalAmountRefuses(t *testing.T) {
	for _, in := range []string{
		"", ".", ".5", "12.", "12.345", "-1", "-0.50", "+1", "1,50", "1e3",
		" 12", "12 ", "abc", "12.3x", "1.2.3", "12..3", "¥12", "0x10",
		"10000000000",             // 11 digits of yuan overflow DE4's 12 digits of fen
		"99999999999.99",          // likewise
		"99999999999999999999999", // would overflow int64
	} {
		if got, err := ParseDecimalAmount(in); err == nil {
			t.Errorf("ParseDecimalAmount(%q) = %d, want an error", in, got)
		}
	}
}

func TestAmountString(t *testing.T) {
	tests := []struct {
		a    Amount
		want string
	}{
		{1234, "12.34"},
		{1200, "12.00"},
		{50, "0.50"},
		{5, "0.05"},
		{0, "0.00"},
		{100, "1.00"},
		{999999999999, "9999999999.99"},
		{-1234, "-12.34"},
		{-5, "-0.05"},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("Amount(%d).String() = %q, want %q", int64(tt.a), got, tt.want)
		}
		if tt.a >= 0 {
			if back, err := ParseDecimalAmount(tt.want); err != nil || back != tt.a {
				t.Errorf("ParseDecimalAmount(%q) = %d, %v; want %d back", tt.want, back, err, int64(tt.a))
			}
		}
	}
}

func TestAmountField(t *testing.T) {
	tests := []struct {
		a    Amount
		want string
	}{
		{2599, "000000002599"},
		{0, "000000000000"},
		{999999999999, "999999999999"},
	}
	for _, tt := range tests {
		if got := tt.a.Field(); got != tt.want {
			t.Errorf("Amount(%d).Field() = %q, want %q", int64(tt.a), got, tt.want)
		}
		if back, err := ParseAmountField(tt.want); err != nil || back != tt.a {
			t.Errorf("ParseAmountField(%q) = %d, %v; want %d", tt.want, back, err, int64(tt.a))
		}
	}
}

func TestParseAmountField(t *testing.T) {
	tests := []struct {
		in      string
		want    Amount
		wantErr bool
	}{
		{"000000002599", 2599, false},
		{"2599", 2599, false},
		{"000000000000", 0, false},
		{"", 0, true},
		{"0000000025.9", 0, true},
		{"-00000002599", 0, true},
		{"+00000002599", 0, true},
		{"1000000000000", 0, true}, // 13 digits
	}
	for _, tt := range tests {
		got, err := ParseAmountField(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAmountField(%q) = %d, %v; want %d, error %v", tt.in, got, err, int64(tt.want), tt.wantErr)
		}
	}
}

// DE4 of a packed and unpacked message reads back as the amount sent, zero
// included (a zero amount is a valid balance inquiry).
func TestAmountThroughTheCodec(t *testing.T) {
	for _, a := range []Amount{0, 1, 2599, 999999999999} {
		msg := NewMessage()
		msg.MTI(MTIFinancialRequest)
		if err := msg.Field(FieldAmount, a.Field()); err != nil {
			t.Fatal(err)
		}
		frame, err := Pack(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unpack(frame)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := got.GetString(FieldAmount)
		back, err := ParseAmountField(s)
		if err != nil || back != a {
			t.Errorf("amount %d came back as %q: %d, %v", int64(a), s, int64(back), err)
		}
	}
}
