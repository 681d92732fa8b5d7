import CapstanEffects
import Foundation
import Testing

@Suite struct SecretConditionTests {
    static let onMain = SecretContext(owner: "org", repo: "site", branch: "main", tag: nil, defaultBranch: "main")

    @Test(arguments: [
        ("{\"and\": []}", true),
        ("{\"or\": []}", false),
        ("true", true),
        ("false", false),
        ("\"isDefaultBranch\"", true),
        ("\"isTag\"", false),
        ("{\"isBranch\": \"main\"}", true),
        ("{\"isBranch\": \"mai\"}", false),
        ("{\"isRepo\": \"site\"}", true),
        ("{\"isOwner\": \"other\"}", false),
        ("{\"and\": [{\"isOwner\": \"org\"}, {\"isRepo\": \"site\"}, \"isDefaultBranch\"]}", true),
        ("{\"or\": [false, {\"isRepo\": \"site\"}]}", true),
    ])
    func evaluates(_ text: String, _ expected: Bool) throws {
        let condition = try SecretCondition(json: JSONValue.parse(Data(text.utf8)))
        #expect(condition.holds(in: Self.onMain) == expected)
    }

    @Test func tagsAndUnknownContext() throws {
        let onTag = SecretContext(owner: nil, repo: nil, branch: nil, tag: "v1", defaultBranch: "main")
        #expect(SecretCondition.isTag.holds(in: onTag))
        #expect(!SecretCondition.isDefaultBranch.holds(in: onTag))
        #expect(!SecretCondition.isOwner("org").holds(in: onTag))
        #expect(!SecretCondition.isDefaultBranch.holds(in: SecretContext(ref: "refs/heads/main")))
    }

    @Test(arguments: [
        ("{\"not\": true}", "unknown condition {\"not\":true}"),
        ("\"isMain\"", "unknown condition \"isMain\""),
        ("{\"isRepo\": \"a\", \"isOwner\": \"b\"}", "exactly one key, not 2"),
        ("{}", "exactly one key, not 0"),
        ("{\"and\": \"isTag\"}", "\"and\" takes an array"),
        ("{\"isBranch\": 1}", "\"isBranch\" takes a string"),
        ("3", "unknown condition 3"),
    ])
    func rejectsUnknownForms(_ text: String, _ message: String) throws {
        #expect {
            try SecretCondition(json: JSONValue.parse(Data(text.utf8)))
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func malformedEntriesFailTheWholeFile() throws {
        let cases = [
            ("{\"a\": {\"kind\": \"Secret\", \"data\": 3}}", "entry \"a\": \"data\" must be an object"),
            ("{\"a\": {\"kind\": \"Other\", \"data\": {}}}", "entry \"a\": \"kind\" must be \"Secret\""),
            ("{\"a\": {\"data\": {}}}", "entry \"a\": \"kind\" must be \"Secret\", found nothing"),
            ("[]", "expected an object of secrets"),
            ("{", "not valid JSON"),
        ]
        for (text, message) in cases {
            #expect {
                try SecretsFile.parse(Data(text.utf8), path: "/x/secrets.json")
            } throws: { error in
                "\(error)".hasPrefix("Could not parse secrets file /x/secrets.json") && "\(error)".contains(message)
            }
        }
    }
}
