/// When a secret may be used, as the Hercules CI agent's secrets.json states it.
public indirect enum SecretCondition: Sendable, Equatable {
    case and([SecretCondition])
    case or([SecretCondition])
    case isDefaultBranch
    case isTag
    case isBranch(String)
    case isRepo(String)
    case isOwner(String)
    case constant(Bool)

    /// Parses a condition; an unknown form is an error that shows it.
    public init(json: JSONValue) throws(SecretConditionError) {
        switch json {
        case .bool(let value):
            self = .constant(value)
        case .string("isDefaultBranch"):
            self = .isDefaultBranch
        case .string("isTag"):
            self = .isTag
        case .object(let object):
            guard object.count == 1, let entry = object.first else {
                throw SecretConditionError(
                    "a condition object must have exactly one key, not \(object.count): \(json.compact)")
            }
            let (key, value) = (entry.key, entry.value)
            switch (key, value) {
            case ("and", .array(let items)):
                self = .and(try items.map { item throws(SecretConditionError) in try SecretCondition(json: item) })
            case ("or", .array(let items)):
                self = .or(try items.map { item throws(SecretConditionError) in try SecretCondition(json: item) })
            case ("isBranch", .string(let name)): self = .isBranch(name)
            case ("isRepo", .string(let name)): self = .isRepo(name)
            case ("isOwner", .string(let name)): self = .isOwner(name)
            case ("and", _), ("or", _):
                throw SecretConditionError("\"\(key)\" takes an array of conditions, not \(value.typeName)")
            case ("isBranch", _), ("isRepo", _), ("isOwner", _):
                throw SecretConditionError("\"\(key)\" takes a string, not \(value.typeName)")
            default:
                throw SecretConditionError("unknown condition \(json.compact)")
            }
        default:
            throw SecretConditionError("unknown condition \(json.compact)")
        }
    }

    public var json: JSONValue {
        switch self {
        case .and(let items): .object(["and": .array(items.map(\.json))])
        case .or(let items): .object(["or": .array(items.map(\.json))])
        case .isDefaultBranch: .string("isDefaultBranch")
        case .isTag: .string("isTag")
        case .isBranch(let name): .object(["isBranch": .string(name)])
        case .isRepo(let name): .object(["isRepo": .string(name)])
        case .isOwner(let name): .object(["isOwner": .string(name)])
        case .constant(let value): .bool(value)
        }
    }

    /// Whether the condition holds; what the context does not know never holds.
    public func holds(in context: SecretContext) -> Bool {
        switch self {
        case .and(let items): items.allSatisfy { $0.holds(in: context) }
        case .or(let items): items.contains { $0.holds(in: context) }
        case .isDefaultBranch:
            context.defaultBranch.map { context.ref == "refs/heads/" + $0 } ?? false
        case .isTag: context.ref?.hasPrefix("refs/tags/") ?? false
        case .isBranch(let name): context.ref == "refs/heads/" + name
        case .isRepo(let name): context.repo == name
        case .isOwner(let name): context.owner == name
        case .constant(let value): value
        }
    }
}

public struct SecretConditionError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What a secret's condition is checked against: where the effect's code comes from.
public struct SecretContext: Sendable, Equatable {
    public var owner: String?
    public var repo: String?
    /// The full git ref, `refs/heads/main` or `refs/tags/v1`.
    public var ref: String?
    public var defaultBranch: String?

    public init(owner: String? = nil, repo: String? = nil, ref: String? = nil, defaultBranch: String? = nil) {
        self.owner = owner
        self.repo = repo
        self.ref = ref
        self.defaultBranch = defaultBranch
    }

    public init(owner: String?, repo: String?, branch: String?, tag: String?, defaultBranch: String?) {
        self.init(
            owner: owner, repo: repo, ref: branch.map { "refs/heads/" + $0 } ?? tag.map { "refs/tags/" + $0 },
            defaultBranch: defaultBranch)
    }
}
