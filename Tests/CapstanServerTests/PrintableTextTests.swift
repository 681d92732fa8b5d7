import CapstanClient
import Testing

/// What an agent logs cannot drive the terminal of the person following a deployment.
struct PrintableTextTests {
    @Test(arguments: [
        ("\u{1B}[31mred\u{1B}[0m text", "red text"),
        ("\u{1B}]0;pwned title\u{07}after", "after"),
        ("\u{1B}]52;c;ZXZpbA==\u{1B}\\clipboard", "clipboard"),
        ("line\rover\u{1B}[2Kwrite", "lineoverwrite"),
        ("\u{9B}1;1Hhome", "home"),
        ("bell\u{07} and\u{00}nul", "bell andnul"),
        ("tab\tkept, ünïcödé kept", "tab\tkept, ünïcödé kept"),
        ("\u{1B}7\u{1B}8saved", "saved"),
    ])
    func escapeSequencesAndControlCharactersAreRemoved(input: String, printed: String) {
        #expect(PrintableText.sanitize(input) == printed)
    }
}
