#include "remote/challenge.h"

#include <fmt/format.h>

#include <cstring>
#include <utility>

#include "base/text.h"

namespace imgpull {
namespace {

// Error messages quote the header; this much of it says what was wrong.
constexpr size_t kMaxQuotedHeader = 256;

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// RFC 7230 tchar: what schemes, parameter names and bare values are made of.
bool is_tchar(char c) { return is_alnum(c) || (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c)); }

// RFC 7235 token68 (base64-like), without its trailing '=' padding.
bool is_token68_char(char c) { return is_alnum(c) || (c != '\0' && std::strchr("-._~+/", c)); }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// A recursive-descent parser over the header value. The lookahead helpers
// take a position and return one, so that deciding between the grammar's
// alternatives never has to undo anything.
class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<std::vector<Challenge>> parse() {
    std::vector<Challenge> challenges;
    for (;;) {
      // "#rule" lists may have empty elements: ", , Basic" is one challenge.
      pos_ = skip_separators(pos_);
      if (pos_ == s_.size()) return challenges;
      Challenge c;
      size_t end = token_end(pos_);
      if (end == pos_) return fail("expected an authentication scheme");
      c.scheme = ascii_lowered(s_.substr(pos_, end - pos_));
      pos_ = end;
      if (pos_ < s_.size() && s_[pos_] != ',' && !is_ows(s_[pos_])) {
        return fail("expected a space after the scheme");
      }
      pos_ = skip_ows(pos_);
      IMGPULL_TRY(parse_data(c));
      pos_ = skip_ows(pos_);
      if (pos_ < s_.size() && s_[pos_] != ',') return fail("expected ',' between challenges");
      challenges.push_back(std::move(c));
    }
  }

 private:
  size_t skip_ows(size_t p) const {
    while (p < s_.size() && is_ows(s_[p])) ++p;
    return p;
  }
  size_t skip_separators(size_t p) const {
    while (p < s_.size() && (is_ows(s_[p]) || s_[p] == ',')) ++p;
    return p;
  }
  size_t token_end(size_t p) const {
    while (p < s_.size() && is_tchar(s_[p])) ++p;
    return p;
  }
  bool at_element_end(size_t p) const { return p == s_.size() || s_[p] == ','; }

  // `name BWS "="`: an auth-param starts at p (rather than a new challenge).
  bool param_at(size_t p) const {
    size_t end = token_end(p);
    if (end == p) return false;
    end = skip_ows(end);
    return end < s_.size() && s_[end] == '=';
  }

  // A challenge carries a token68 or auth-params, never both. "abc==" alone
  // is a token68; "k=" with parameters after it is a parameter whose value is
  // empty, because parameters cannot follow a token68.
  bool token68_at(size_t p) const {
    size_t end = p;
    while (end < s_.size() && is_token68_char(s_[end])) ++end;
    if (end == p) return false;
    while (end < s_.size() && s_[end] == '=') ++end;
    end = skip_ows(end);
    return at_element_end(end) && !param_at(skip_separators(end));
  }

  Status parse_data(Challenge& c) {
    if (at_element_end(pos_) && !param_at(skip_separators(pos_))) return ok_status();
    if (token68_at(pos_)) {
      size_t end = pos_;
      while (end < s_.size() && (is_token68_char(s_[end]) || s_[end] == '=')) ++end;
      c.token68 = std::string(s_.substr(pos_, end - pos_));
      pos_ = end;
      return ok_status();
    }
    for (;;) {
      size_t next = skip_separators(pos_);
      if (!param_at(next)) return ok_status();  // the end, or the next challenge
      pos_ = next;
      size_t name_end = token_end(pos_);
      std::string name = ascii_lowered(s_.substr(pos_, name_end - pos_));
      pos_ = skip_ows(skip_ows(name_end) + 1);  // past BWS "=" BWS
      IMGPULL_ASSIGN_OR_RETURN(std::string value, parse_value(name));
      c.params.emplace(name, std::move(value));  // emplace: the first one wins
      pos_ = skip_ows(pos_);
      if (!at_element_end(pos_)) return fail("expected ',' after parameter \"" + name + "\"");
    }
  }

  // token / quoted-string, or nothing before the next ',' (an empty value,
  // which RFC 7235 does not allow but costs nothing to accept).
  Result<std::string> parse_value(const std::string& name) {
    if (pos_ < s_.size() && s_[pos_] == '"') return parse_quoted();
    size_t end = token_end(pos_);
    if (end == pos_ && !at_element_end(skip_ows(pos_))) {
      return fail("expected a token or a quoted string as the value of \"" + name + "\"");
    }
    std::string value(s_.substr(pos_, end - pos_));
    pos_ = end;
    return value;
  }

  Result<std::string> parse_quoted() {
    size_t start = pos_++;
    std::string out;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return out;
      if (c == '\\') {
        if (pos_ == s_.size()) break;
        c = s_[pos_++];
      }
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        --pos_;
        return fail("control character in a quoted string");
      }
      out += c;
    }
    pos_ = start;
    return fail("unterminated quoted string");
  }

  Error fail(std::string_view what) const {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("invalid WWW-Authenticate header {}: {} at offset {}",
                             quoted(s_, kMaxQuotedHeader), what, pos_));
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

std::string Challenge::param(std::string_view key) const {
  auto it = params.find(ascii_lowered(key));
  return it == params.end() ? std::string() : it->second;
}

Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header_value) {
  if (header_value.size() > kMaxWwwAuthenticateSize) {
    return Error(ErrorCode::kTooLarge,
                 fmt::format("WWW-Authenticate header {} is over the limit of {} bytes",
                             quoted(header_value, kMaxQuotedHeader), kMaxWwwAuthenticateSize));
  }
  return Parser(header_value).parse();
}

}  // namespace imgpull
