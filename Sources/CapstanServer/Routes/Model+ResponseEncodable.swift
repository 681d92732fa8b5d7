import CapstanModel
import Hummingbird

extension CacheInfo: ResponseEncodable {}
extension TokenInfo: ResponseEncodable {}
extension CreatedToken: ResponseEncodable {}
extension MissingPathsResponse: ResponseEncodable {}
extension PathUploadResult: ResponseEncodable {}
extension CreatedWorkspace: ResponseEncodable {}
