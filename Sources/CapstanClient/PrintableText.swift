/// Text from elsewhere (an agent's log, a server's message) made safe to print on a terminal:
/// escape sequences (colours, cursor moves, title changes, OSC 52 clipboard writes) and other
/// control characters are removed, so a machine cannot rewrite what a person sees. Tabs stay.
public enum PrintableText {
    public static func sanitize(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        var scalars = text.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            switch scalar.value {
            case 0x1B:
                skipEscapeSequence(&scalars)
            case 0x9B:
                // C1 control sequence introducer: a CSI without the ESC.
                skipUntilFinalByte(&scalars)
            case 0x09:
                result.append(scalar)
            case 0x00...0x1F, 0x7F...0x9F:
                continue
            default:
                result.append(scalar)
            }
        }
        return String(result)
    }

    private static func skipEscapeSequence(_ scalars: inout String.UnicodeScalarView.Iterator) {
        guard let next = scalars.next() else { return }
        switch next {
        case "[":
            skipUntilFinalByte(&scalars)
        case "]", "P", "X", "^", "_":
            // OSC, DCS, SOS, PM, APC: up to BEL or ESC \.
            while let scalar = scalars.next() {
                if scalar.value == 0x07 { return }
                if scalar.value == 0x1B {
                    _ = scalars.next()
                    return
                }
            }
        default:
            // A two-character escape (ESC c, ESC 7, …): the second one is gone with it.
            return
        }
    }

    /// CSI parameters and intermediates, up to the final byte (0x40…0x7E).
    private static func skipUntilFinalByte(_ scalars: inout String.UnicodeScalarView.Iterator) {
        while let scalar = scalars.next() {
            if (0x40...0x7E).contains(scalar.value) { return }
        }
    }
}
