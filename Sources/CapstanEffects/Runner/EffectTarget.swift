import Foundation

/// What `capstan effect run` was asked to run: an attribute of a Nix file, or a `.drv` already instantiated.
public enum EffectTarget: Sendable, Equatable {
    case attribute(file: String, path: String)
    case derivation(String)

    public init(argument: String, file: String?) {
        if file == nil, argument.hasPrefix("/nix/store/"), argument.hasSuffix(".drv") {
            self = .derivation(argument)
        } else {
            let absolute = URL(fileURLWithPath: file ?? "default.nix").standardizedFileURL.path
            self = .attribute(file: absolute, path: argument)
        }
    }

    public var displayName: String {
        switch self {
        case .attribute(_, let path): path.isEmpty ? "the file's top-level value" : path
        case .derivation(let path): path
        }
    }

    /// An expression that yields `{ isEffect; drvPath; prebuilt }` for the attribute, evaluated strictly;
    /// `drvPath` and `prebuilt` are only forced for an effect.
    func evaluationExpression() -> String? {
        guard case .attribute(let file, let path) = self else { return nil }
        let selection = path.split(separator: ".").map { "." + Self.nixString(String($0)) }.joined()
        return """
            let
              root = import \(Self.nixString(file));
              top = if builtins.isFunction root then root { } else root;
              value = top\(selection);
              isEffect = builtins.isAttrs value && (value.isEffect or false) == true;
            in
            {
              inherit isEffect;
              drvPath = if isEffect then value.drvPath else null;
              prebuilt = if isEffect then map (p: { path = "${p}"; drv = p.drvPath or null; }) (value.prebuilt or [ ]) else [ ];
            }
            """
    }

    static func nixString(_ text: String) -> String {
        var result = "\""
        for character in text {
            switch character {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "$": result += "\\$"
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result + "\""
    }
}
