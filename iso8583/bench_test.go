package iso8583

import (
	"bytes"
	"testing"
)

// benchRequest is a terminal's 0200 as it arrives: token, amounts, times,
// acceptor fields.
func benchRequest() []byte {
	m := NewMessage()
	m.MTI(MTIFinancialRequest)
	for id, v := range map[int]string{
		FieldPAN: "6299906048458884", FieldProcessingCode: "000000", FieldAmount: "000000001234",
		FieldTransmissionTime: "1125120000", FieldSTAN: "000042", FieldLocalTime: "200000",
		FieldLocalDate: "1125", FieldExpiry: "2912", FieldMCC: "5411", FieldPOSEntryMode: "072",
		FieldPOSCondition: "00", FieldAcquirer: "01020000", FieldRRN: "632917000042",
		FieldTerminalID: "TSIM0001", FieldMerchantID: "104110054110001",
		FieldMerchantNameLocation: "TAPSWITCH DEMO STORE      SHANGHAI    CN", FieldCurrency: "156",
	} {
		m.Field(id, v)
	}
	b, err := Pack(m)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkFrameReadUnpack is what the switch does with every frame a
// terminal sends: read it off the connection and unpack it.
func BenchmarkFrameReadUnpack(b *testing.B) {
	frame, _ := AppendFrame(nil, benchRequest())
	stream := bytes.Repeat(frame, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	r := bytes.NewReader(stream)
	fr := NewFrameReader(r, FrameBytesMaxDefault)
	for i := 0; b.Loop(); i++ {
		if i%1024 == 0 {
			r.Reset(stream)
		}
		payload, err := fr.Next()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Unpack(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPack builds and packs a terminal's answer (eleven fields).
func BenchmarkPack(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m := NewMessage()
		m.MTI(MTIFinancialResponse)
		m.Field(FieldPAN, "6299906048458884")
		m.Field(FieldProcessingCode, "000000")
		m.Field(FieldAmount, "000000001234")
		m.Field(FieldTransmissionTime, "1125120000")
		m.Field(FieldSTAN, "000042")
		m.Field(FieldRRN, "632917000042")
		m.Field(FieldAuthCode, "123456")
		m.Field(FieldResponseCode, "00")
		m.Field(FieldTerminalID, "TSIM0001")
		m.Field(FieldMerchantID, "104110054110001")
		m.Field(FieldCurrency, "156")
		if _, err := Pack(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFrameReadParse is BenchmarkFrameReadUnpack on the fast codec:
// the same frames read the same way, parsed in place by Fields.
func BenchmarkFrameReadParse(b *testing.B) {
	frame, _ := AppendFrame(nil, benchRequest())
	stream := bytes.Repeat(frame, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	r := bytes.NewReader(stream)
	fr := NewFrameReader(r, FrameBytesMaxDefault)
	var fields Fields
	for i := 0; b.Loop(); i++ {
		if i%1024 == 0 {
			r.Reset(stream)
		}
		payload, err := fr.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := fields.Parse(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuilder is BenchmarkPack on the fast codec: the same eleven
// fields, packed with a Builder into a reused buffer.
func BenchmarkBuilder(b *testing.B) {
	b.ReportAllocs()
	var m Builder
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buildAnswer(&m)
		var err error
		if buf, err = m.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
