// Fuzzes Reference::parse. Properties of every reference that parses:
//  - str() and familiar() parse back to the same Reference (normalisation is
//    a fixed point, and what imgpull prints names the same image);
//  - the accessors agree with the fields (manifest_selector, registry_host);
//  - tag or digest is set, the path has no upper case and no empty component.
// Every refusal has a one-line message starting `invalid reference "`.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "imgpull/reference.h"

using imgpull::Reference;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ref = Reference::parse(text);
  if (!ref) {
    const std::string& message = ref.error().message();
    FUZZ_CHECK(message.starts_with("invalid reference \"")) << message;
    FUZZ_CHECK(message.find('\n') == std::string::npos) << message;
    return 0;
  }
  FUZZ_CHECK(ref->tag || ref->digest);
  FUZZ_CHECK(!ref->path.empty() && !ref->domain.empty());
  FUZZ_CHECK(ref->path.find("//") == std::string::npos && !ref->path.starts_with('/') &&
             !ref->path.ends_with('/'))
      << ref->path;
  for (char c : ref->path) FUZZ_CHECK(!(c >= 'A' && c <= 'Z')) << ref->path;
  FUZZ_CHECK(ref->manifest_selector() == (ref->digest ? ref->digest->str() : *ref->tag));
  FUZZ_CHECK(ref->registry_host() ==
             (ref->domain == imgpull::kDockerHubDomain ? std::string(imgpull::kDockerHubRegistryHost)
                                                       : ref->domain));
  FUZZ_CHECK(ref->str().starts_with(ref->name()));
  for (const std::string& printed : {ref->str(), ref->familiar()}) {
    auto again = Reference::parse(printed);
    FUZZ_CHECK(again.ok()) << "input " << text << " printed as " << printed
                           << " does not parse: " << again.error().message();
    FUZZ_CHECK(*again == *ref) << "input " << text << " printed as " << printed
                               << " parses to " << again->str();
    FUZZ_CHECK(again->str() == ref->str());
  }
  return 0;
}
