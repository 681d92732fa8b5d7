import CapstanModel
import CapstanServices
import Hummingbird

extension CacheInfo: ResponseEncodable {}
extension TokenInfo: ResponseEncodable {}
extension CreatedToken: ResponseEncodable {}
extension MissingPathsResponse: ResponseEncodable {}
extension PathUploadResult: ResponseEncodable {}
extension CreatedWorkspace: ResponseEncodable {}
extension GCReport: ResponseEncodable {}
