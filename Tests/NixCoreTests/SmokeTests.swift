import Testing
@testable import NixCore
