// The grammar and normalisation follow github.com/distribution/reference
// (regexp.go, normalize.go), written as a small hand parser rather than one
// regular expression so that every rejection can say which part is wrong.
#include "imgpull/reference.h"

#include "base/text.h"

namespace imgpull {
namespace {

constexpr size_t kMaxPathLength = 255;  // distribution's RepositoryNameTotalLengthMax
constexpr size_t kMaxTagLength = 128;
constexpr std::string_view kLegacyDockerHubDomain = "index.docker.io";
constexpr std::string_view kOfficialPrefix = "library/";  // Docker Hub's official images
constexpr std::string_view kDefaultTag = "latest";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower_alnum(char c) { return is_lower(c) || is_digit(c); }
bool is_alnum(char c) { return is_lower_alnum(c) || is_upper(c); }
bool is_word(char c) { return is_alnum(c) || c == '_'; }  // regexp \w
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

Error invalid(std::string reason) { return Error(ErrorCode::kInvalidArgument, std::move(reason)); }

// Docker refuses a bare 64-hex string as a name: it is an image ID, and
// accepting it would make `pull <id>` silently mean docker.io/library/<id>.
bool is_image_id(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!is_digit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

// Docker's splitDockerDomain rule: the first of several components names a
// registry only if it cannot be a Docker Hub namespace. Hub namespaces are
// lowercase and have no '.' or ':', so those (and "localhost") mark a domain.
bool looks_like_domain(std::string_view first) {
  if (first == "localhost") return true;
  for (char c : first) {
    if (c == '.' || c == ':' || is_upper(c)) return true;
  }
  return false;
}

// host[:port], where host is DNS-like labels (any case, as DNS ignores it) or
// a bracketed IPv6 address without a zone; the port is digits.
Status check_domain(std::string_view domain) {
  std::optional<std::string_view> port;
  if (domain.starts_with('[')) {
    size_t close = domain.find(']');
    std::string_view inside =
        domain.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
    bool ok = close != std::string_view::npos && !inside.empty();
    for (char c : inside) ok = ok && (is_hex(c) || c == ':');
    if (!ok) {
      return invalid("domain " + quoted(domain) +
                     " is not a bracketed IPv6 address (hex digits and ':' only, no zone)");
    }
    std::string_view after = domain.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return invalid("domain " + quoted(domain) + " has text after ']'");
      port = after.substr(1);
    }
  } else {
    size_t colon = domain.find(':');
    std::string_view host = domain.substr(0, colon);
    if (colon != std::string_view::npos) port = domain.substr(colon + 1);
    // Labels separated by single dots; a label is alphanumerics and inner '-'.
    size_t start = 0;
    while (true) {
      size_t dot = host.find('.', start);
      std::string_view label =
          host.substr(start, dot == std::string_view::npos ? dot : dot - start);
      bool ok = !label.empty() && is_alnum(label.front()) && is_alnum(label.back());
      for (char c : label) ok = ok && (is_alnum(c) || c == '-');
      if (!ok) {
        return invalid("domain " + quoted(domain) + " is not a valid host name (label " +
                       quoted(label) + ")");
      }
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  if (port) {
    bool ok = !port->empty();
    for (char c : *port) ok = ok && is_digit(c);
    if (!ok) return invalid("domain " + quoted(domain) + " has an invalid port " + quoted(*port));
  }
  return ok_status();
}

// One path component: lowercase alphanumerics joined by one of the separators
// ".", "_", "__" or a run of '-'. Repeated '-' is allowed (hostname-like names
// such as "project--id") but repeated '.' or mixed separators are not.
Status check_component(std::string_view component) {
  if (component.empty()) return invalid("empty path component");
  for (char c : component) {
    if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-') {
      return invalid("invalid character " + quoted(c) + " in repository name");
    }
  }
  if (!is_lower_alnum(component.front()) || !is_lower_alnum(component.back())) {
    return invalid("path component " + quoted(component) +
                   " must start and end with a lowercase letter or digit");
  }
  for (size_t i = 0; i < component.size();) {
    if (is_lower_alnum(component[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (!is_lower_alnum(component[end])) ++end;  // the back is alnum, so this stops
    std::string_view sep = component.substr(i, end - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) {
      return invalid("path component " + quoted(component) + " has invalid separator " +
                     quoted(sep));
    }
    i = end;
  }
  return ok_status();
}

Status check_path(std::string_view path) {
  // Checked before the characters, as Docker does, so "Foo" gets the message
  // that tells the user what to do rather than "invalid character 'F'".
  for (char c : path) {
    if (is_upper(c)) return invalid("repository name must be lowercase");
  }
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    IMGPULL_TRY(check_component(
        path.substr(start, slash == std::string_view::npos ? slash : slash - start)));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (path.size() > kMaxPathLength) {
    return invalid("repository name is longer than " + std::to_string(kMaxPathLength) +
                   " characters");
  }
  return ok_status();
}

// [\w][\w.-]{0,127}: a tag may not start with '.' or '-' so it can't be
// mistaken for a flag or a relative path.
Status check_tag(std::string_view tag) {
  if (tag.empty()) return invalid("empty tag after ':'");
  if (tag.size() > kMaxTagLength) {
    return invalid("tag is longer than " + std::to_string(kMaxTagLength) + " characters");
  }
  if (!is_word(tag.front())) {
    return invalid("tag must start with a letter, digit or '_', not " + quoted(tag.front()));
  }
  for (char c : tag) {
    if (!is_word(c) && c != '.' && c != '-')
      return invalid("invalid character " + quoted(c) + " in tag");
  }
  return ok_status();
}

// Says, in reference terms, what is wrong with the part after '@'; Digest::parse
// stays the one authority on what a Digest is.
Result<Digest> parse_digest(std::string_view text) {
  if (text.empty()) return invalid("empty digest after '@'");
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return invalid("digest " + quoted(text) + " must be ALGORITHM:HEX");
  }
  std::string_view algorithm = text.substr(0, colon);
  std::string_view hex = text.substr(colon + 1);
  size_t want;
  if (algorithm == "sha256") {
    want = 64;
  } else if (algorithm == "sha512") {
    want = 128;
  } else {
    return Error(ErrorCode::kUnsupported, "unsupported digest algorithm " + quoted(algorithm) +
                                              " (imgpull handles sha256 and sha512)");
  }
  if (hex.size() != want) {
    return invalid(std::string(algorithm) + " digest needs " + std::to_string(want) +
                   " hex characters, got " + std::to_string(hex.size()));
  }
  for (char c : hex) {
    if (!is_digit(c) && !(c >= 'a' && c <= 'f')) {
      return invalid(std::string(algorithm) + " digest must be lowercase hex, found " + quoted(c));
    }
  }
  return Digest::parse(text);
}

// Everything but the "invalid reference <input>: " prefix, which parse adds.
Result<Reference> parse_unprefixed(std::string_view text) {
  if (text.empty()) return invalid("reference is empty");
  if (is_image_id(text)) {
    return invalid("a 64-character hex string is an image ID, not a repository name");
  }

  // Cut from the right: the digest starts at the first '@' (nothing before it
  // may contain one), the tag at a ':' after the last '/' (a ':' before it is
  // a port). Like Docker, "host:5000" alone is therefore name "host", tag "5000".
  std::string_view rest = text;
  std::optional<std::string_view> digest_text, tag_text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    digest_text = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  size_t colon = rest.rfind(':');
  size_t slash = rest.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    tag_text = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return invalid("repository name is missing");

  Reference ref;
  ref.domain = kDockerHubDomain;
  std::string_view path = rest;
  if (size_t first = rest.find('/');
      first != std::string_view::npos && looks_like_domain(rest.substr(0, first))) {
    std::string_view domain = rest.substr(0, first);
    IMGPULL_TRY(check_domain(domain));
    ref.domain = domain == kLegacyDockerHubDomain ? kDockerHubDomain : domain;
    path = rest.substr(first + 1);
    if (path.empty()) return invalid("repository path is missing after domain " + quoted(domain));
  }
  // "docker.io/nginx" and "nginx" both mean the official image library/nginx;
  // other registries have no such convention.
  ref.path = ref.domain == kDockerHubDomain && path.find('/') == std::string_view::npos
                 ? std::string(kOfficialPrefix) + std::string(path)
                 : std::string(path);
  IMGPULL_TRY(check_path(ref.path));

  if (tag_text) {
    IMGPULL_TRY(check_tag(*tag_text));
    ref.tag = std::string(*tag_text);
  }
  if (digest_text) {
    IMGPULL_ASSIGN_OR_RETURN(ref.digest, parse_digest(*digest_text));
  }
  if (!ref.tag && !ref.digest) ref.tag = kDefaultTag;
  return ref;
}

}  // namespace

Result<Reference> Reference::parse(std::string_view text) {
  Result<Reference> ref = parse_unprefixed(text);
  if (!ref) return std::move(ref).error().wrap("invalid reference " + quoted(text));
  return ref;
}

std::string Reference::name() const { return domain + "/" + path; }

namespace {

// "<name>[:tag][@digest]".
std::string with_tag_and_digest(std::string name, const std::optional<std::string>& tag,
                                const std::optional<Digest>& digest) {
  // Appended piecewise: `"@" + digest->str()` trips GCC 12's -Wrestrict false positive at -O3.
  if (tag) name.append(":").append(*tag);
  if (digest) name.append("@").append(digest->str());
  return name;
}

}  // namespace

std::string Reference::str() const { return with_tag_and_digest(name(), tag, digest); }

// Docker's familiarizeName: drop "docker.io/", and "library/" when what is
// left has no further '/' (Hub has no nested official namespaces).
// Unlike Docker, "docker.io/" stays when the Hub namespace would read as a
// registry without it ("docker.io/localhost/x", "docker.io/a.b/c"): the
// familiar form must parse back to the same image (found by fuzz/reference_fuzz).
std::string Reference::familiar_name() const {
  if (domain != kDockerHubDomain) return name();
  std::string_view p = path;
  if (p.starts_with(kOfficialPrefix) &&
      p.find('/', kOfficialPrefix.size()) == std::string_view::npos) {
    p.remove_prefix(kOfficialPrefix.size());
  }
  if (size_t slash = p.find('/');
      slash != std::string_view::npos && looks_like_domain(p.substr(0, slash))) {
    return name();
  }
  return std::string(p);
}

std::string Reference::familiar() const { return with_tag_and_digest(familiar_name(), tag, digest); }

std::string Reference::registry_host() const {
  return domain == kDockerHubDomain ? std::string(kDockerHubRegistryHost) : domain;
}

std::string Reference::manifest_selector() const {
  // A digest pins the content; the tag beside it is only a label for humans.
  return digest ? digest->str() : tag.value_or(std::string(kDefaultTag));
}

}  // namespace imgpull
