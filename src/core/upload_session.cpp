#include "core/upload_session.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace regmeter {

std::string encode_session_token(const SessionToken& token) {
  // Hex, dot-separated: URL-safe without escaping, short, versioned by shape.
  return fmt::format("{:x}.{:x}", static_cast<std::uint64_t>(token.started_unix_ns), token.bytes);
}

std::optional<SessionToken> decode_session_token(std::string_view text) {
  auto dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= text.size()) return std::nullopt;
  std::uint64_t started = 0, bytes = 0;
  auto parse = [](std::string_view part, std::uint64_t& out) {
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), out, 16);
    return ec == std::errc() && end == part.data() + part.size();
  };
  if (!parse(text.substr(0, dot), started) || !parse(text.substr(dot + 1), bytes)) return std::nullopt;
  if (started == 0 || started > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return SessionToken{static_cast<std::int64_t>(started), bytes};
}

std::optional<SessionToken> take_session_token(std::string& target) {
  auto query = target.find('?');
  if (query == std::string::npos) return std::nullopt;
  auto is_ours = [](std::string_view parameter) {
    return parameter.size() > kSessionParam.size() && parameter.substr(0, kSessionParam.size()) == kSessionParam &&
           parameter[kSessionParam.size()] == '=';
  };
  std::optional<SessionToken> found;
  bool present = false;
  std::string kept;  // the other parameters, byte for byte, in order
  std::string_view rest = std::string_view(target).substr(query + 1);
  while (true) {
    auto end = rest.find('&');
    std::string_view parameter = rest.substr(0, end);
    if (is_ours(parameter)) {
      present = true;
      if (!found) found = decode_session_token(parameter.substr(kSessionParam.size() + 1));
    } else if (!parameter.empty()) {
      if (!kept.empty()) kept.push_back('&');
      kept.append(parameter);
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  if (!present) return std::nullopt;
  target.resize(query);
  if (!kept.empty()) target.append("?").append(kept);
  return found;
}

std::string with_session_token(std::string_view location, const SessionToken& token) {
  std::string out(location);
  auto fragment = out.find('#');
  std::string tail;
  if (fragment != std::string::npos) {
    tail = out.substr(fragment);
    out.resize(fragment);
  }
  out.push_back(out.find('?') == std::string::npos ? '?' : '&');
  out.append(kSessionParam).push_back('=');
  out.append(encode_session_token(token));
  out.append(tail);
  return out;
}

std::optional<SessionObservation> observe_closed_session(Handler handler, const std::optional<SessionToken>& carried,
                                                         std::int64_t request_started_unix_ns,
                                                         std::uint64_t request_body_bytes, std::int64_t now_unix_ns) {
  std::int64_t started = carried ? carried->started_unix_ns
                                 : handler == Handler::blob_upload ? request_started_unix_ns : 0;
  if (started <= 0) return std::nullopt;
  SessionObservation observation;
  observation.seconds = std::max(0.0, static_cast<double>(now_unix_ns - started) / 1e9);
  observation.bytes = (carried ? carried->bytes : 0) + request_body_bytes;
  return observation;
}

std::string_view outcome_name(SessionOutcome outcome) {
  switch (outcome) {
    case SessionOutcome::completed: return "completed";
    case SessionOutcome::mounted: return "mounted";
    case SessionOutcome::cancelled: return "cancelled";
    case SessionOutcome::failed: return "failed";
    case SessionOutcome::abandoned: return "abandoned";
  }
  return "failed";
}

namespace {
bool has_query_parameter(std::string_view target, std::string_view name) {
  auto query = target.find('?');
  if (query == std::string_view::npos) return false;
  std::string_view rest = target.substr(query + 1);
  while (!rest.empty()) {
    auto end = rest.find('&');
    std::string_view parameter = rest.substr(0, end);
    if (parameter.substr(0, name.size()) == name &&
        (parameter.size() == name.size() || parameter[name.size()] == '='))
      return true;
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return false;
}
}  // namespace

SessionStep session_step(Handler handler, Method method, std::string_view target, int status) {
  using Kind = SessionStep::Kind;
  if (handler != Handler::blob_upload && handler != Handler::blob_upload_chunk) return {};
  // A 401 is a token round trip: the client retries the same request.
  if (status == 401 || status == 0) return {};
  bool error = status >= 400;
  if (handler == Handler::blob_upload) {
    if (method != Method::post) return {};
    if (error) return {Kind::closed, SessionOutcome::failed};
    if (status == 201)  // mounted from another repository, or a monolithic POST ?digest=
      return {Kind::closed, has_query_parameter(target, "mount") ? SessionOutcome::mounted : SessionOutcome::completed};
    if (status == 202) return {Kind::opened};
    return {};
  }
  switch (method) {
    case Method::patch:
      if (error) return {Kind::closed, SessionOutcome::failed};
      return {Kind::continued};
    case Method::put:
      if (error) return {Kind::closed, SessionOutcome::failed};
      if (status == 201) return {Kind::closed, SessionOutcome::completed};
      return {Kind::continued};
    case Method::delete_:
      // Cancelling an upload the registry no longer knows (already completed
      // or cancelled) ends nothing.
      if (status == 404) return {};
      if (error) return {Kind::closed, SessionOutcome::failed};
      return {Kind::closed, SessionOutcome::cancelled};
    case Method::get:
    case Method::head:
      // A status query keeps a live session open; one answered with an
      // error (404: finished or unknown) must not bring a closed one back.
      if (error) return {};
      return {Kind::continued};
    default:
      return {};
  }
}

}  // namespace regmeter

namespace regmeter {

void OpenSessionTable::touch(const std::string& upload_id, std::string_view repository, const SessionToken& token,
                             std::int64_t now_unix_ns) {
  std::lock_guard lock(mutex_);
  Entry& entry = open_[upload_id];  // keeps requests_in_flight: the answering request is one of them
  if (entry.repository.empty()) entry.repository = repository;
  entry.token = token;
  entry.last_seen_unix_ns = now_unix_ns;
}

bool OpenSessionTable::request_began(const std::string& upload_id, std::int64_t now_unix_ns) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(upload_id);
  if (it == open_.end()) return false;
  ++it->second.requests_in_flight;
  // `now` is when this request's head began; another request may have been
  // seen since.
  it->second.last_seen_unix_ns = std::max(it->second.last_seen_unix_ns, now_unix_ns);
  return true;
}

void OpenSessionTable::request_progressed(const std::string& upload_id, std::int64_t now_unix_ns) {
  std::lock_guard lock(mutex_);
  if (auto it = open_.find(upload_id); it != open_.end()) it->second.last_seen_unix_ns = now_unix_ns;
}

void OpenSessionTable::request_ended(const std::string& upload_id, std::int64_t now_unix_ns,
                                     std::uint64_t unanswered_body_bytes) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(upload_id);
  if (it == open_.end()) return;  // closed meanwhile (by this request or another one)
  // Never below zero: the entry may have been closed and opened again by a
  // status request on another connection while this request was in flight.
  if (it->second.requests_in_flight > 0) --it->second.requests_in_flight;
  it->second.unanswered_bytes += unanswered_body_bytes;
  it->second.last_seen_unix_ns = now_unix_ns;
}

void OpenSessionTable::close(const std::string& upload_id) {
  std::lock_guard lock(mutex_);
  open_.erase(upload_id);
}

std::vector<OpenSessionTable::Expired> OpenSessionTable::take_expired(std::int64_t now_unix_ns,
                                                                     std::int64_t timeout_ns) {
  std::vector<Expired> expired;
  std::lock_guard lock(mutex_);
  for (auto it = open_.begin(); it != open_.end();) {
    if (it->second.requests_in_flight == 0 && now_unix_ns - it->second.last_seen_unix_ns > timeout_ns) {
      expired.push_back({it->first, std::move(it->second)});
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  return expired;
}

std::size_t OpenSessionTable::size() const {
  std::lock_guard lock(mutex_);
  return open_.size();
}

}  // namespace regmeter
