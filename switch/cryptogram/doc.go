// Package cryptogram is the network's check that a tap came from the phone
// the token lives on, once: the ARQC each tap carries, the DE55 it travels
// in, and the window of transaction counters the switch accepts. It does no
// I/O; the switch's authorization pipeline and the simulated phone (bench/pos)
// both call it. docs/cryptogram.md is the specification, with a test vector
// that TestDocVector checks.
//
// # ARQC
//
// Following EMV's idea (a key per token, a fresh MAC per tap):
//
//	session key = HMAC-SHA256(token key, counter as 4 bytes BE)[:16]
//	ARQC        = HMAC-SHA256(session key, MAC input)[:8]
//
//	MAC input, layout 2 (41 bytes)
//	 0     1              13        16       22     24         32              36      38        41
//	+-----+--------------+---------+--------+------+----------+---------------+-------+---------+
//	| 02  | amount       | currency| date   | type | terminal | unpredictable | ATC   | CVM     |
//	|     | 12 ASCII dig.| 3 ASCII | YYMMDD | 2    | DE41, 8  | 4 bytes (9F37)| 2 (BE)| 3 (9F34)|
//	+-----+--------------+---------+--------+------+----------+---------------+-------+---------+
//
// The first byte is the layout's version (Layout). Layout 1, the same
// without the layout byte and the terminal, was removed before any phone
// used it. The terminal ID binds a cryptogram to the terminal it was made
// for, as an EMV card's CDOL can; the date (9A) is checked by the switch
// against its own (DaysApart, DateSkewDaysMax), so a cryptogram made ahead
// of time for another day or another terminal is refused.
//
// The token key is the token's own 16 bytes (vault.Keyring.TokenKey). The
// counter is the phone's 32-bit transaction counter; 9F36 carries its low
// 16 bits (the ATC of EMV), and the switch recovers the rest from the last
// counter it accepted (Window.Resolve). The CVM results are inside the MAC so
// that nobody between the phone and the switch can turn "no CVM" into
// "fingerprint verified".
//
// # Why a 32-bit counter behind a 16-bit ATC
//
// An EMV card stops at ATC FFFF. A phone token that did the same would die
// after 65,535 taps, and the bench harness makes that many on one token in
// seconds. Deriving the session key from the full counter, as SRTP does with
// its roll-over counter, keeps the wire format and makes an old cryptogram
// replayed after the ATC wrapped fail the MAC instead of passing as new.
//
// # Counters accepted
//
// A counter is accepted once. Window keeps the highest accepted (Last) and
// a bitmap of the WindowSize (1024) below it; a counter above Last, or one
// of the WindowSize below it not yet seen, is accepted; Last itself, a seen
// one or one older than the window is a replay. A strict "greater than
// Last" rule was rejected: taps of one token that overtake each other
// between phone and switch (the bench harness sends dozens at once) would be
// refused. So was a 64-wide window: at the bench's default 64 taps of one
// token in flight, a few in 60,000 arrived more than 64 late.
package cryptogram
