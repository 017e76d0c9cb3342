// Blob upload sessions: POST → PATCH* → PUT ?digest= (or DELETE, or a
// monolithic POST, or a mount). The session's start and the bytes it has
// carried so far travel in the upload URL the proxy hands the client (a
// `_rm=` query parameter on Location), and are stripped before the request
// goes upstream. So any replica can close a session another one opened,
// with no shared state. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/route.h"

namespace regmeter {

inline constexpr std::string_view kSessionParam = "_rm";

struct SessionToken {
  std::int64_t started_unix_ns = 0;  // wall clock: replicas share it, not a steady clock
  std::uint64_t bytes = 0;           // body bytes carried by the session's earlier requests
};

std::string encode_session_token(const SessionToken& token);
std::optional<SessionToken> decode_session_token(std::string_view text);

// Removes `_rm=...` from a request target's query, keeping every other byte
// as it was; returns the token it carried, if any (malformed ones are
// removed and ignored).
std::optional<SessionToken> take_session_token(std::string& target);

// Adds `_rm=<token>` to a Location value (absolute or relative URL).
std::string with_session_token(std::string_view location, const SessionToken& token);

enum class SessionOutcome : std::uint8_t { completed, mounted, cancelled, failed, abandoned };
inline constexpr std::size_t kSessionOutcomeCount = 5;
std::string_view outcome_name(SessionOutcome outcome);

// What one upload request, with its answer, does to its session.
struct SessionStep {
  enum class Kind {
    none,      // not part of a session, or an answer that changes nothing (401)
    opened,    // a session starts: hand out a token
    continued, // still open: hand out the updated token
    closed,    // the session ended with `outcome`
  };
  Kind kind = Kind::none;
  SessionOutcome outcome = SessionOutcome::completed;
};

// `target` is the request target as the client sent it (query included).
SessionStep session_step(Handler handler, Method method, std::string_view target, int status);

// What a closing request contributes to the session histograms.
struct SessionObservation {
  double seconds = 0;       // first byte of the session's POST → now
  std::uint64_t bytes = 0;  // body bytes of all its requests
};

// For a request whose step closed its session: the observation, or nothing
// when the session's start is unknown (a PATCH/PUT/DELETE that did not carry
// our token: the session began before this proxy was in its path). A POST
// that closes its own session (mount, monolithic upload, failure) starts it
// too, at `request_started_unix_ns`.
std::optional<SessionObservation> observe_closed_session(Handler handler, const std::optional<SessionToken>& carried,
                                                         std::int64_t request_started_unix_ns,
                                                         std::uint64_t request_body_bytes, std::int64_t now_unix_ns);

}  // namespace regmeter

#include <mutex>
#include <unordered_map>
#include <vector>

namespace regmeter {

// Open sessions this process has seen, by upload id, so that one nobody
// touches for `timeout` can be counted as abandoned. Only upload requests
// touch it (a few per layer), so one mutex is fine here.
//
// A session with a request in flight is never abandoned, however long that
// request streams (docker, podman and buildah send a whole layer as one
// PATCH): the data path tells the table when a request of the session begins
// and ends, and moves its last-seen time on while its body makes progress.
class OpenSessionTable {
 public:
  struct Entry {
    std::string repository;
    SessionToken token;                  // with the bytes as of the last answered request
    std::uint64_t unanswered_bytes = 0;  // body bytes of requests cut off before an answer
    std::int64_t last_seen_unix_ns = 0;  // the last request's answer or end, or body progress
    unsigned requests_in_flight = 0;
    std::uint64_t bytes_received() const { return token.bytes + unanswered_bytes; }
  };
  struct Expired {
    std::string upload_id;
    Entry entry;
  };

  // A request of the session was answered and the session stays open (its
  // POST's 202, a PATCH's 202, a status GET): records its token.
  void touch(const std::string& upload_id, std::string_view repository, const SessionToken& token,
             std::int64_t now_unix_ns);
  // A request to the session's upload URL arrived. Returns whether the table
  // knows the session (then request_ended must follow, exactly once); one it
  // does not know (never opened here, or already closed) is left alone.
  bool request_began(const std::string& upload_id, std::int64_t now_unix_ns);
  // Body bytes of that request are still moving.
  void request_progressed(const std::string& upload_id, std::int64_t now_unix_ns);
  // `unanswered_body_bytes`: its body bytes when no answer took them into the
  // session's token (the client gave up mid-PATCH), else 0.
  void request_ended(const std::string& upload_id, std::int64_t now_unix_ns, std::uint64_t unanswered_body_bytes);
  void close(const std::string& upload_id);
  // Removes and returns the sessions with no request in flight and none for
  // longer than `timeout_ns`.
  std::vector<Expired> take_expired(std::int64_t now_unix_ns, std::int64_t timeout_ns);
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> open_;
};

}  // namespace regmeter
