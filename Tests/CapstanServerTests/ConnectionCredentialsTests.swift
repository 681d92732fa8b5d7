import CapstanServices
import Foundation
import Testing

@testable import CapstanServer

/// A connection hashes its token once while it sends the same `Authorization` value, and again as
/// soon as the value changes.
struct ConnectionCredentialsTests {
    @Test func theSameValueIsHashedOnceAndAnotherValueAgain() {
        var credentials = ConnectionCredentials()
        let first = "Bearer capre_first"
        #expect(credentials.secretHash(ofAuthorization: first) == TokenSecret.hash("capre_first"))
        #expect(credentials.secretHash(ofAuthorization: first) == TokenSecret.hash("capre_first"))
        #expect(credentials.secretHash(ofAuthorization: "Bearer capre_second") == TokenSecret.hash("capre_second"))
        let basic = "Basic " + Data("nix:capre_third".utf8).base64EncodedString()
        #expect(credentials.secretHash(ofAuthorization: basic) == TokenSecret.hash("capre_third"))
        #expect(credentials.secretHash(ofAuthorization: first) == TokenSecret.hash("capre_first"))
    }

    @Test(arguments: ["Bearer", "Bearer ", "Token capre_x", "Basic !!!", ""])
    func valuesWithoutATokenHaveNoHash(authorization: String) {
        var credentials = ConnectionCredentials()
        #expect(credentials.secretHash(ofAuthorization: "Bearer capre_before") != nil)
        #expect(credentials.secretHash(ofAuthorization: authorization) == nil)
    }
}
