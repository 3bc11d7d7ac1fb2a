// config_parse.cpp — JSON and TOML files to validated, flattened documents.
//
// Both parsers produce a list of (dotted key, value, line) in file order;
// validation against the schema is shared and reports every problem of a
// file at once (a syntax error stops the parse, so it comes last).
//
// BOUNDS (parse_limits; see docs/config.md)
//   Nothing here recurses to a depth the input controls. JSON goes through
//   nlohmann's SAX parser (itself iterative) into a flattener that keeps the
//   dotted path as one string it appends to and truncates, a stack of open
//   objects, and a depth cap; no DOM is built. toml++ builds a tree and
//   destroys it recursively, so the TOML text is first scanned (linear, no
//   recursion) for an upper bound on the depth that tree would have, and a
//   file past max_depth never reaches toml++; the tree is then flattened
//   with an explicit stack. Keys longer than max_key_bytes and files with
//   more than max_entries settings are rejected, which bounds the memory a
//   file of a given size can make the parser take. Files are opened
//   non-blocking and read only if fstat says they are regular and small
//   enough.
//
//   Every failure (bad_alloc, a validator that throws, anything) becomes a
//   config_error naming the file.
//
// nlohmann-json's SAX gives no positions, so the input iterator records how
// far the lexer has read: a key's line is exact (the lexer stops at its
// closing quote), and a value is reported on its key's line. toml++ gives a
// source line for every node. toml++ is used header-only (this is its one
// translation unit), so the installed library needs no toml++ at link time.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <set>
#include <utility>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "config_watch.hpp"
#include "polymap/config/config_store.hpp"

namespace polymap::config {

namespace {

struct raw_entry {
  std::string key;
  value val;
  int line = 0;
};

// The problems of one file (or of merged settings from several), in the
// order found; at most `max` are kept (the rest are counted and reported as
// one more line).
class problem_list {
 public:
  problem_list(const std::string& origin, std::size_t max) : origin_(origin), max_(std::max<std::size_t>(max, 1)) {}
  void add(int line, std::string key, std::string problem) {
    add_at(origin_, line, std::move(key), std::move(problem));
  }
  // A problem of another file than `origin` (a setting's own origin).
  void add_at(const std::string& file, int line, std::string key, std::string problem) {
    if (list_.size() < max_)
      list_.push_back({file, line, std::move(key), std::move(problem)});
    else
      ++more_;
  }
  bool full() const noexcept { return list_.size() >= max_; }
  // Adds this last problem and throws them all.
  [[noreturn]] void fatal(int line, std::string key, std::string problem) {
    if (list_.size() >= max_) list_.pop_back(), ++more_;
    list_.push_back({origin_, line, std::move(key), std::move(problem)});
    throw_all();
  }
  void throw_if_any() {
    if (!list_.empty()) throw_all();
  }
  const std::string& origin() const noexcept { return origin_; }

 private:
  [[noreturn]] void throw_all() {
    // File order (the TOML tree is walked in key order), line 0 (unknown)
    // last; problems of several files grouped by file, in the order the
    // files first appear.
    std::map<std::string, std::size_t> rank;  // copies: the sort moves the problems
    for (const auto& p : list_) rank.emplace(p.file, rank.size());
    auto order = [&](const config_problem& p) {
      return std::pair(rank.at(p.file), p.line == 0 ? std::numeric_limits<int>::max() : p.line);
    };
    std::stable_sort(list_.begin(), list_.end(),
                     [&](const config_problem& a, const config_problem& b) { return order(a) < order(b); });
    if (more_ > 0) list_.push_back({origin_, 0, "", fmt::format("and {} more problem(s)", more_)});
    throw config_error(std::move(list_));
  }
  const std::string& origin_;
  std::size_t max_;
  std::vector<config_problem> list_;
  std::size_t more_ = 0;
};

[[noreturn]] void fail(const std::string& origin, int line, std::string key, const std::string& problem) {
  throw config_error(origin, line, std::move(key), problem);
}

// Line numbers of byte offsets, counted incrementally (offsets mostly grow).
class line_counter {
 public:
  explicit line_counter(std::string_view text) : text_(text) {}
  int line_at(std::size_t offset) {
    offset = std::min(offset, text_.size());
    if (offset < at_) at_ = 0, line_ = 1;
    line_ += static_cast<int>(std::count(text_.begin() + static_cast<std::ptrdiff_t>(at_),
                                         text_.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
    at_ = offset;
    return line_;
  }

 private:
  std::string_view text_;
  std::size_t at_ = 0;
  int line_ = 1;
};

// A NUL byte is never part of a text config (and would end a C string
// early): rejected with its line.
void reject_nul(std::string_view text, const std::string& origin) {
  if (const auto p = text.find('\0'); p != std::string_view::npos)
    fail(origin, line_counter(text).line_at(p), "",
         fmt::format("a NUL byte at offset {} (a binary or corrupted file?)", p));
}

// A numeric literal with no fraction and no exponent.
bool integer_literal(std::string_view lit) {
  return lit.find_first_of(".eEiInN") == std::string_view::npos;
}

// A literal whose mantissa has a non-zero digit (so 0 is an underflow).
bool nonzero_mantissa(std::string_view lit) {
  for (char c : lit) {
    if (c == 'e' || c == 'E') break;
    if (c >= '1' && c <= '9') return true;
  }
  return false;
}

constexpr std::string_view underflow_msg = "underflows to 0 (smaller than the smallest double); write 0 if 0 is meant";

// --- JSON --------------------------------------------------------------------

// An input iterator over the text that publishes how far it has been read.
class tracking_iterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;
  tracking_iterator() = default;
  tracking_iterator(const char* p, const char** cursor) : p_(p), cursor_(cursor) {}
  reference operator*() const { return *p_; }
  tracking_iterator& operator++() {
    ++p_;
    if (cursor_) *cursor_ = p_;
    return *this;
  }
  tracking_iterator operator++(int) {
    auto old = *this;
    ++*this;
    return old;
  }
  bool operator==(const tracking_iterator& o) const { return p_ == o.p_; }
  bool operator!=(const tracking_iterator& o) const { return p_ != o.p_; }

 private:
  const char* p_ = nullptr;
  const char** cursor_ = nullptr;
};

// nlohmann SAX handler: flattens objects to dotted keys as the parser reads
// them. Bounded: a depth cap, a key length cap, an entry cap.
class json_flattener {
 public:
  using json = nlohmann::json;
  json_flattener(std::string_view text, const char** cursor, const parse_limits& limits, problem_list& problems,
                 std::vector<raw_entry>& out)
      : text_(text), cursor_(cursor), limits_(limits), problems_(problems), out_(out), lines_(text) {}

  bool null() {
    if (skip_value()) return true;
    if (!top_level_checked()) return true;
    problems_.add(key_line_, path_, "null is not a value (remove the key to use its default)");
    return true;
  }
  bool boolean(bool b) { return emit(value(b)); }
  bool number_integer(json::number_integer_t i) { return emit(value(static_cast<std::int64_t>(i))); }
  bool number_unsigned(json::number_unsigned_t u) {
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      if (skip_value() || !top_level_checked()) return true;
      problems_.add(key_line_, path_, fmt::format("integer {} is out of the int64 range", u));
      return true;
    }
    return emit(value(static_cast<std::int64_t>(u)));
  }
  bool number_float(json::number_float_t d, const json::string_t& literal) {
    if (skip_value() || !top_level_checked()) return true;
    if (integer_literal(literal)) {  // nlohmann makes a double of an integer past uint64
      problems_.add(key_line_, path_, fmt::format("integer {} is out of the int64 range", literal));
      return true;
    }
    if (d == 0 && nonzero_mantissa(literal)) {
      problems_.add(key_line_, path_, fmt::format("number {} {}", literal, underflow_msg));
      return true;
    }
    return emit(value(static_cast<double>(d)));
  }
  bool string(json::string_t& str) { return emit(value(std::move(str))); }
  bool binary(json::binary_t&) { return true; }  // not produced by the JSON parser

  bool start_object(std::size_t) {
    enter();
    if (skip_ > 0 || std::exchange(skip_dup_, false)) {
      ++skip_;
      return true;
    }
    if (stack_.empty() && started_) return true;  // cannot happen: one top-level value
    started_ = true;
    stack_.push_back(frame{path_.size(), key_line_});
    return true;
  }
  bool key(json::string_t& k) {
    if (skip_ > 0) return true;
    frame& f = stack_.back();
    path_.resize(f.base);
    if (f.base > 0) path_ += '.';
    path_ += k;
    key_line_ = lines_.line_at(offset());
    if (path_.size() > limits_.max_key_bytes)
      problems_.fatal(key_line_, path_.substr(0, 64) + "...",
                      fmt::format("key of {} bytes; the limit is {} (parse_limits::max_key_bytes)", path_.size(),
                                  limits_.max_key_bytes));
    if (k.empty()) problems_.add(key_line_, path_, "an empty key name");
    if (!f.keys.insert(k).second) {
      problems_.add(key_line_, path_, "set twice in the same object (duplicate key)");
      skip_dup_ = true;  // its value is not looked at (reported once, not again as "set twice")
    }
    return true;
  }
  bool end_object() {
    --depth_;
    if (skip_ > 0) {
      --skip_;
      return true;
    }
    frame f = std::move(stack_.back());
    stack_.pop_back();
    path_.resize(f.base);
    if (f.keys.empty() && !stack_.empty()) problems_.add(f.line, path_, "an empty table sets nothing");
    if (!stack_.empty()) {
      key_line_ = f.line;
      stack_.back().any = true;
    }
    return true;
  }
  bool start_array(std::size_t) {
    enter();
    if (skip_ > 0 || std::exchange(skip_dup_, false)) {
      ++skip_;
      return true;
    }
    if (!top_level_checked()) return true;
    problems_.add(key_line_, path_, "arrays are not supported");
    skip_ = 1;  // its elements are not looked at
    return true;
  }
  bool end_array() {
    --depth_;
    if (skip_ > 0) --skip_;
    return true;
  }
  bool parse_error(std::size_t position, const std::string& token, const nlohmann::detail::exception& ex) {
    const int line = lines_.line_at(position > 0 ? position - 1 : 0);
    if (ex.id == 406) {  // nlohmann: "number overflow", a literal past the double range
      const std::string what = integer_literal(token) ? fmt::format("integer {} is out of the int64 range", token)
                                                      : fmt::format("number {} is out of the double range", token);
      problems_.fatal(line, skip_ > 0 ? std::string() : path_, what);
    }
    std::string msg = ex.what();
    // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..." -> after the "] "
    if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
    problems_.fatal(line, "", "malformed JSON: " + msg);
  }

 private:
  struct frame {
    std::size_t base;  // path_ length of this object's own key
    int line;          // where its key is
    std::set<std::string> keys{};
    bool any = false;
  };
  std::size_t offset() const { return static_cast<std::size_t>(*cursor_ - text_.data()); }
  // Whether the value being read is not looked at: inside an array, or the
  // value of a duplicate key (which this consumes).
  bool skip_value() { return skip_ > 0 || std::exchange(skip_dup_, false); }
  void enter() {
    if (++depth_ > limits_.max_depth)
      problems_.fatal(lines_.line_at(offset()), stack_.empty() ? "" : path_.substr(0, 64),
                      fmt::format("nested deeper than {} levels (parse_limits::max_depth)", limits_.max_depth));
  }
  // A value outside any object is a top level that is not an object.
  bool top_level_checked() {
    if (stack_.empty()) problems_.fatal(1, "", "the top level must be an object");
    return true;
  }
  bool emit(value v) {
    if (skip_value() || !top_level_checked()) return true;
    if (out_.size() >= limits_.max_entries)
      problems_.fatal(key_line_, path_,
                      fmt::format("more than {} settings (parse_limits::max_entries)", limits_.max_entries));
    out_.push_back({path_, std::move(v), key_line_});
    return true;
  }

  std::string_view text_;
  const char** cursor_;
  const parse_limits& limits_;
  problem_list& problems_;
  std::vector<raw_entry>& out_;
  line_counter lines_;
  std::string path_;  // the dotted key being read
  std::vector<frame> stack_;
  int depth_ = 0;
  int skip_ = 0;           // > 0: inside an array or a duplicate key's object, at this depth
  bool skip_dup_ = false;  // the next value is a duplicate key's
  int key_line_ = 1;
  bool started_ = false;
};

std::vector<raw_entry> parse_json(std::string_view text, const std::string& origin, const parse_limits& limits,
                                  problem_list& problems) {
  std::vector<raw_entry> out;
  const char* cursor = text.data();
  json_flattener h(text, &cursor, limits, problems, out);
  nlohmann::json::sax_parse(tracking_iterator(text.data(), &cursor),
                            tracking_iterator(text.data() + text.size(), &cursor), &h);
  (void)origin;
  return out;
}

// --- TOML --------------------------------------------------------------------

// An upper bound on the depth of the tree toml++ would build from `text`
// (each table header part, dotted key part, inline table and array counts
// one), found with one linear pass that knows TOML's strings and comments.
// Returns the line where the bound first passes max_depth, or 0.
// Also sets *non_ascii to the line of the first byte >= 0x80 outside strings
// and comments, and returns 0 there: TOML allows none (bare keys are ASCII),
// and toml++ 3.3 reaches an unreachable point (undefined behaviour) on some
// such code points (found by fuzz_config_parse).
int toml_too_deep(std::string_view text, int max_depth, int* non_ascii) {
  struct level {
    char bracket;  // '[' or '{'
    int inner;     // '[': depth of its elements; '{': depth of the table
  };
  std::vector<level> open;  // at most max_depth + 1 entries: every push adds a level
  enum class ctx { key, header, value } c = ctx::key;
  int line = 1, header_depth = 0, base = 0, segs = 1;
  bool key_chars = false;
  const std::size_t n = text.size();
  auto too_deep = [&](int d) { return d > max_depth; };
  for (std::size_t i = 0; i < n; ++i) {
    const char ch = text[i];
    if (ch == '\n') {
      ++line;
      if (open.empty()) c = ctx::key, base = header_depth, segs = 1, key_chars = false;
      continue;
    }
    if (ch == ' ' || ch == '\t' || ch == '\r') continue;
    if (static_cast<unsigned char>(ch) >= 0x80) {
      *non_ascii = line;
      return 0;
    }
    if (ch == '#') {
      while (i + 1 < n && text[i + 1] != '\n') ++i;
      continue;
    }
    if (ch == '"' || ch == '\'') {
      const bool triple = i + 2 < n && text[i + 1] == ch && text[i + 2] == ch;
      if (triple) {
        i += 3;
        while (i < n && !(text[i] == ch && i + 2 < n && text[i + 1] == ch && text[i + 2] == ch)) {
          if (text[i] == '\\' && ch == '"')
            ++i;
          else if (text[i] == '\n')
            ++line;
          ++i;
        }
        i += 2;
        while (i + 1 < n && text[i + 1] == ch) ++i;  // up to two quotes may end the content
      } else {
        ++i;
        while (i < n && text[i] != ch && text[i] != '\n') {
          if (text[i] == '\\' && ch == '"' && i + 1 < n && text[i + 1] != '\n') ++i;
          ++i;
        }
        if (i < n && text[i] == '\n') --i;  // unterminated: the newline is handled above
      }
      if (c == ctx::key) key_chars = true;
      continue;
    }
    if ((ch == ']' || ch == '}') && !open.empty() && c != ctx::header) {
      open.pop_back();
      if (!open.empty()) {
        c = ctx::value;
        if (open.back().bracket == '[') base = open.back().inner;
      }
      continue;
    }
    if (ch == ',' && !open.empty() && c != ctx::header) {
      if (open.back().bracket == '{') {
        c = ctx::key, base = open.back().inner, segs = 1, key_chars = false;
      } else {
        c = ctx::value, base = open.back().inner;
      }
      continue;
    }
    switch (c) {
      case ctx::key:
        if (ch == '[' && open.empty() && !key_chars) {
          c = ctx::header, segs = 1;
          if (i + 1 < n && text[i + 1] == '[') ++i, ++segs;  // an array of tables adds the array's level
          if (too_deep(segs)) return line;
        } else if (ch == '.') {
          if (too_deep(base + ++segs)) return line;
        } else if (ch == '=') {
          c = ctx::value;
          base += segs;  // the depth of the value
          if (too_deep(base)) return line;
        } else {
          key_chars = true;
        }
        break;
      case ctx::header:
        if (ch == '.') {
          if (too_deep(++segs)) return line;
        } else if (ch == ']') {
          header_depth = segs, base = segs;
          while (i + 1 < n && text[i + 1] == ']') ++i;
          c = ctx::value;  // nothing but a comment may follow on the line
        }
        break;
      case ctx::value:
        if (ch == '[') {
          open.push_back({'[', base + 1});
          if (too_deep(base + 1)) return line;
          // base stays: array elements are at open.back().inner, set by ',' and here
          base = open.back().inner;
        } else if (ch == '{') {
          open.push_back({'{', base});
          c = ctx::key, segs = 1, key_chars = false;
        }
        break;
    }
  }
  return 0;
}

// Finds the text of a TOML value from its source position (line, column in
// code points), to look at a float literal toml++ has already converted.
std::string_view toml_literal(std::string_view text, const toml::source_region& where) {
  std::size_t pos = 0;
  for (auto l = where.begin.line; l > 1 && pos < text.size(); --l) {
    pos = text.find('\n', pos);
    if (pos == std::string_view::npos) return {};
    ++pos;
  }
  for (auto col = where.begin.column; col > 1 && pos < text.size(); ++pos) {
    // A code point ends where the next byte is not a UTF-8 continuation byte.
    if (pos + 1 >= text.size() || (static_cast<unsigned char>(text[pos + 1]) & 0xC0) != 0x80) --col;
  }
  std::size_t end = pos;
  while (end < text.size() && std::strchr("0123456789+-._eEinfa", text[end]) && text[end] != '\0') ++end;
  return text.substr(pos, end - pos);
}

std::vector<raw_entry> parse_toml(std::string_view text, const std::string& origin, const parse_limits& limits,
                                  problem_list& problems) {
  int non_ascii = 0;
  const int deep_line = toml_too_deep(text, limits.max_depth, &non_ascii);
  if (non_ascii > 0)
    problems.fatal(non_ascii, "",
                   "a non-ASCII character outside a string or comment (TOML allows them only in strings, quoted "
                   "keys and comments)");
  if (const int line = deep_line; line > 0)
    problems.fatal(line, "",
                   fmt::format("nested deeper than {} levels (parse_limits::max_depth; tables, dotted key parts, "
                               "inline tables and arrays each count one)",
                               limits.max_depth));
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(origin));
  } catch (const toml::parse_error& e) {
    problems.fatal(static_cast<int>(e.source().begin.line), "",
                   fmt::format("malformed TOML: {} (column {})", e.description(), e.source().begin.column));
  }
  std::vector<raw_entry> out;
  // Depth-first with an explicit stack; `path` is appended to and truncated.
  struct frame {
    const toml::table* tbl;
    toml::table::const_iterator it;
    std::size_t base;
  };
  std::vector<frame> stack{{&root, root.begin(), 0}};
  std::string path;
  while (!stack.empty()) {
    frame& f = stack.back();
    if (f.it == f.tbl->end()) {
      stack.pop_back();
      continue;
    }
    const auto& [k, node] = *f.it;
    ++f.it;
    path.resize(f.base);
    if (f.base > 0) path += '.';
    path += k.str();
    const int line = static_cast<int>(node.source().begin.line);
    if (path.size() > limits.max_key_bytes)
      problems.fatal(line, path.substr(0, 64) + "...",
                     fmt::format("key of {} bytes; the limit is {} (parse_limits::max_key_bytes)", path.size(),
                                 limits.max_key_bytes));
    if (k.str().empty()) problems.add(line, path, "an empty key name");
    switch (node.type()) {
      case toml::node_type::table: {
        const auto& tbl = *node.as_table();
        if (tbl.empty()) problems.add(line, path, "an empty table sets nothing");
        if (stack.size() > static_cast<std::size_t>(limits.max_depth))  // the scan above should have caught it
          problems.fatal(line, path.substr(0, 64), "nested too deep (parse_limits::max_depth)");
        const std::size_t base = path.size();
        stack.push_back({&tbl, tbl.begin(), base});
        continue;
      }
      case toml::node_type::array:
        problems.add(line, path, "arrays are not supported");
        continue;
      case toml::node_type::date:
      case toml::node_type::time:
      case toml::node_type::date_time:
        problems.add(line, path, "dates and times are not supported (use a string)");
        continue;
      default:
        break;
    }
    if (out.size() >= limits.max_entries)
      problems.fatal(line, path, fmt::format("more than {} settings (parse_limits::max_entries)", limits.max_entries));
    switch (node.type()) {
      case toml::node_type::boolean:
        out.push_back({path, value(node.as_boolean()->get()), line});
        break;
      case toml::node_type::integer:
        out.push_back({path, value(node.as_integer()->get()), line});
        break;
      case toml::node_type::floating_point: {
        const double d = node.as_floating_point()->get();
        if (d == 0 && nonzero_mantissa(toml_literal(text, node.source()))) {
          problems.add(line, path, fmt::format("number {} {}", toml_literal(text, node.source()), underflow_msg));
          break;
        }
        out.push_back({path, value(d), line});
        break;
      }
      case toml::node_type::string:
        out.push_back({path, value(node.as_string()->get()), line});
        break;
      default:
        problems.add(line, path, "unsupported value");
        break;
    }
  }
  // toml++ tables iterate in key order; report in file order.
  std::stable_sort(out.begin(), out.end(), [](const raw_entry& a, const raw_entry& b) { return a.line < b.line; });
  return out;
}

file_format sniff(std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' ? file_format::json : file_format::toml;
  }
  return file_format::json;  // empty: let the JSON parser say so
}

std::string_view file_type_name(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// Edit distance (Levenshtein), for "did you mean".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The schema key closest to a misspelt one, if close enough to be a typo.
std::string suggest(std::string_view unknown, const schema& s) {
  if (unknown.size() > 128) return {};
  const std::size_t budget = std::max<std::size_t>(2, unknown.size() / 4);
  std::string best;
  std::size_t best_d = budget + 1;
  for (const auto& k : s.keys()) {
    const std::size_t gap =
        k.name.size() > unknown.size() ? k.name.size() - unknown.size() : unknown.size() - k.name.size();
    if (gap > budget) continue;
    if (const std::size_t d = edit_distance(unknown, k.name); d < best_d) best_d = d, best = k.name;
  }
  return best;
}

// Runs `body`; anything it throws other than a config_error becomes one
// naming `origin`.
template <class F>
auto totally(const std::string& origin, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const config_error&) {
    throw;
  } catch (const std::bad_alloc&) {
    fail(origin, 0, "", "out of memory while reading it");
  } catch (const std::exception& e) {
    fail(origin, 0, "", fmt::format("unexpected error: {}", e.what()));
  } catch (...) {
    fail(origin, 0, "", "unexpected error (a non-standard exception)");
  }
}

// Reads a schema file into a DOM (nlohmann's builder, which does not
// recurse), capping the depth, rejecting a key set twice in one object
// (nlohmann would keep the last), and turning every parse error, a number
// past the double range included, into a config_error with its line.
class schema_reader {
 public:
  using json = nlohmann::json;
  schema_reader(json& root, std::string_view text, const std::string& origin, const parse_limits& limits)
      : dom_(root), text_(text), origin_(origin), limits_(limits) {}
  bool null() { return dom_.null(); }
  bool boolean(bool b) { return dom_.boolean(b); }
  bool number_integer(json::number_integer_t i) { return dom_.number_integer(i); }
  bool number_unsigned(json::number_unsigned_t u) { return dom_.number_unsigned(u); }
  bool number_float(json::number_float_t d, const json::string_t& s) { return dom_.number_float(d, s); }
  bool string(json::string_t& s) { return dom_.string(s); }
  bool binary(json::binary_t& b) { return dom_.binary(b); }
  bool start_object(std::size_t n) {
    enter();
    keys_.emplace_back();
    return dom_.start_object(n);
  }
  bool key(json::string_t& k) {
    if (!keys_.back().insert(k).second) fail(origin_, 0, k, "set twice in the same object (duplicate key)");
    return dom_.key(k);
  }
  bool end_object() {
    --depth_;
    keys_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    enter();
    return dom_.start_array(n);
  }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    std::string msg = ex.what();
    if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
    fail(origin_, line_counter(text_).line_at(position > 0 ? position - 1 : 0), "", "malformed schema JSON: " + msg);
  }

 private:
  void enter() {
    if (++depth_ > limits_.max_depth)
      fail(origin_, 0, "", fmt::format("nested deeper than {} levels (parse_limits::max_depth)", limits_.max_depth));
  }
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::string_view text_;
  const std::string& origin_;
  const parse_limits& limits_;
  std::vector<std::set<std::string>> keys_;  // of each open object
  int depth_ = 0;
};

// One key of a schema file (see schema::from_json); throws config_error
// naming the key and the field.
key_spec key_from_json(const std::string& name, const nlohmann::json& d, const std::set<std::string>& known_fields,
                       const std::string& origin) {
  auto bad = [&](const std::string& field, const std::string& what) {
    fail(origin, 0, name, fmt::format("field \"{}\" {}", field, what));
  };
  if (name.empty()) fail(origin, 0, name, "a key needs a name");
  if (!d.is_object()) fail(origin, 0, name, "a key's description must be an object");
  for (const auto& [field, _] : d.items()) {
    if (!known_fields.count(field))
      fail(origin, 0, name,
           fmt::format("unknown field '{}' ({})", field, fmt::join(known_fields.begin(), known_fields.end(), ", ")));
  }
  if (!d.contains("type")) fail(origin, 0, name, "needs a field \"type\"");
  if (!d["type"].is_string()) bad("type", "must be a string (bool, int64, double, string, duration)");
  const std::string type = d["type"].get<std::string>();
  key_spec k;
  k.name = name;
  if (type == "bool" || type == "boolean") {
    k.kind = value::kind::boolean;
  } else if (type == "int64" || type == "int" || type == "integer") {
    k.kind = value::kind::int64;
  } else if (type == "duration") {
    k.kind = value::kind::int64;
    k.duration = true;
  } else if (type == "double" || type == "float" || type == "number") {
    k.kind = value::kind::float64;
  } else if (type == "string") {
    k.kind = value::kind::string;
  } else {
    bad("type", fmt::format("is '{}'; one of bool, int64, double, string, duration", type));
  }
  auto flag = [&](const char* field) {
    if (!d.contains(field)) return false;
    if (!d[field].is_boolean()) bad(field, "must be true or false");
    return d[field].get<bool>();
  };
  k.required = flag("required");
  k.allow_non_finite = flag("allow_non_finite");
  if (k.allow_non_finite && k.kind != value::kind::float64) bad("allow_non_finite", "applies to double keys only");
  if (d.contains("description")) {
    if (!d["description"].is_string()) bad("description", "must be a string");
    k.description = d["description"].get<std::string>();
  }

  std::vector<std::function<std::string(const value&)>> checks;
  // A duration string ("2s") as milliseconds, for a duration key's fields.
  auto duration_field = [&](const char* field) -> std::optional<std::int64_t> {
    if (!k.duration || !d[field].is_string()) return std::nullopt;
    const auto ms = parse_duration_ms(d[field].get<std::string>());
    if (!ms) bad(field, fmt::format("'{}' is not a duration (like 250ms, 2s, 1m30s, 1h)", d[field].get<std::string>()));
    return ms;
  };
  auto number = [&](const char* field) -> double {
    if (const auto ms = duration_field(field)) return static_cast<double>(*ms);
    if (!d[field].is_number()) bad(field, "must be a number");
    if (k.kind != value::kind::int64 && k.kind != value::kind::float64) bad(field, "applies to numbers only");
    return d[field].get<double>();
  };
  auto as_double = [](const value& v) {
    return v.which() == value::kind::int64 ? static_cast<double>(*v.get_if<std::int64_t>()) : *v.get_if<double>();
  };
  // Written as !(x >= lo) so that NaN fails both.
  std::optional<double> lo, hi;
  if (d.contains("min")) {
    lo = number("min");
    checks.push_back([lo = *lo, as_double](const value& v) -> std::string {
      return !(as_double(v) >= lo) ? fmt::format("{} is below the minimum {}", v, lo) : "";
    });
  }
  if (d.contains("max")) {
    hi = number("max");
    checks.push_back([hi = *hi, as_double](const value& v) -> std::string {
      return !(as_double(v) <= hi) ? fmt::format("{} is above the maximum {}", v, hi) : "";
    });
  }
  if (lo && hi && *lo > *hi) bad("min", fmt::format("{} is above \"max\" {}", *lo, *hi));
  if (d.contains("one_of")) {
    if (!d["one_of"].is_array()) bad("one_of", "must be an array of strings");
    if (k.kind != value::kind::string) bad("one_of", "applies to strings only");
    std::vector<std::string> allowed;
    for (const auto& a : d["one_of"]) {
      if (!a.is_string()) bad("one_of", "must list strings only");
      allowed.push_back(a.get<std::string>());
    }
    checks.push_back([f = one_of(std::move(allowed))](const value& v) { return f(*v.get_if<std::string>()); });
  }
  if (flag("non_empty")) {
    if (k.kind != value::kind::string) bad("non_empty", "applies to strings only");
    checks.push_back([](const value& v) { return non_empty()(*v.get_if<std::string>()); });
  }
  if (!checks.empty()) {
    k.check = [checks](const value& v) -> std::string {
      for (const auto& c : checks) {
        if (auto why = c(v); !why.empty()) return why;
      }
      return {};
    };
  }
  if (d.contains("default")) {
    const auto& dv = d["default"];
    value v;
    switch (k.kind) {
      case value::kind::boolean:
        if (!dv.is_boolean()) bad("default", "must be a bool");
        v = value(dv.get<bool>());
        break;
      case value::kind::int64:
        if (const auto ms = duration_field("default")) {
          v = value(*ms);
          break;
        }
        if (!dv.is_number_integer())
          bad("default", k.duration ? "must be a duration or an integer" : "must be an integer");
        if (dv.is_number_unsigned() &&
            dv.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          bad("default", fmt::format("integer {} is out of the int64 range", dv.get<std::uint64_t>()));
        v = value(dv.get<std::int64_t>());
        break;
      case value::kind::float64:
        if (!dv.is_number()) bad("default", "must be a number");
        v = value(dv.get<double>());
        break;
      default:
        if (!dv.is_string()) bad("default", "must be a string");
        v = value(dv.get<std::string>());
        break;
    }
    if (k.check) {
      if (auto why = k.check(v); !why.empty()) bad("default", "is rejected by the key's own checks: " + why);
    }
    k.default_value = v;
  } else if (!k.required) {
    fail(origin, 0, name, "needs a field \"default\" or \"required\": true");
  }
  return k;
}

}  // namespace

std::optional<std::int64_t> parse_duration_ms(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    const std::size_t digits_at = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (n > (std::numeric_limits<std::int64_t>::max() - (text[i] - '0')) / 10) return std::nullopt;
      n = n * 10 + (text[i] - '0');
    }
    if (i == digits_at) return std::nullopt;
    std::int64_t unit = 0;
    if (text.substr(i, 2) == "ms") {
      unit = 1, i += 2;
    } else if (i < text.size() && text[i] == 's') {
      unit = 1000, ++i;
    } else if (i < text.size() && text[i] == 'm') {
      unit = 60'000, ++i;
    } else if (i < text.size() && text[i] == 'h') {
      unit = 3'600'000, ++i;
    } else {
      return std::nullopt;  // a number without a unit (write an integer for milliseconds)
    }
    if (n > (std::numeric_limits<std::int64_t>::max() - total) / unit) return std::nullopt;
    total += n * unit;
  }
  return total;
}

namespace detail {

std::string read_regular(const std::filesystem::path& file, std::size_t max_bytes, struct stat* before,
                         struct stat* after) {
  const std::string name = file.string();
  return totally(name, [&] {
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) fail(name, 0, "", fmt::format("cannot open: {}", std::strerror(errno)));
    struct closer {
      int fd;
      ~closer() { ::close(fd); }
    } close_it{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) fail(name, 0, "", fmt::format("cannot stat: {}", std::strerror(errno)));
    if (!S_ISREG(st.st_mode))
      fail(name, 0, "", fmt::format("{}, not a regular file: only regular files are read", file_type_name(st.st_mode)));
    const auto too_big = [&](std::uintmax_t size) {
      fail(name, 0, "",
           fmt::format("{} bytes or more; the limit is {} (parse_limits::max_file_bytes)", size, max_bytes));
    };
    if (static_cast<std::uintmax_t>(st.st_size) > max_bytes) too_big(static_cast<std::uintmax_t>(st.st_size));
    if (before) *before = st;
    std::string text;
    text.reserve(static_cast<std::size_t>(st.st_size));
    char buf[16384];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail(name, 0, "", fmt::format("cannot read: {}", std::strerror(errno)));
      }
      if (n == 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() > max_bytes) too_big(text.size());  // it grew after fstat
    }
    if (after && ::fstat(fd, after) != 0) fail(name, 0, "", fmt::format("cannot stat: {}", std::strerror(errno)));
    return text;
  });
}

}  // namespace detail

std::string read_config_file(const std::filesystem::path& file, std::size_t max_bytes) {
  return detail::read_regular(file, max_bytes);
}

std::string_view kind_name(value::kind k) noexcept {
  switch (k) {
    case value::kind::boolean:
      return "bool";
    case value::kind::int64:
      return "int64";
    case value::kind::float64:
      return "double";
    case value::kind::string:
      return "string";
    default:
      return "unsupported";
  }
}

schema& schema::add(key_spec s) {
  if (s.name.empty()) throw std::invalid_argument("schema: a key needs a name");
  if (kind_name(s.kind) == "unsupported")
    throw std::invalid_argument(fmt::format("schema: key '{}' has an unsupported type", s.name));
  if (find(s.name)) throw std::invalid_argument(fmt::format("schema: key '{}' declared twice", s.name));
  if (!s.required && s.default_value.which() != s.kind)
    throw std::invalid_argument(fmt::format("schema: key '{}': default is {}, declared {}", s.name,
                                            s.default_value.type_name(), kind_name(s.kind)));
  keys_.push_back(std::move(s));
  return *this;
}

const key_spec* schema::find(std::string_view name) const noexcept {
  for (const auto& k : keys_)
    if (k.name == name) return &k;
  return nullptr;
}

schema schema::any() {
  schema s;
  s.allow_unknown(true);
  return s;
}

schema schema::demo() {
  schema s;
  s.add(config_key<std::string>("http.host", "localhost", non_empty(), "address to listen on").spec());
  s.add(config_key<std::int64_t>("http.port", 8080, in_range(1, 65535), "TCP port").spec());
  s.add(config_key<std::int64_t>("http.timeout_ms", 3000, in_range(1, 60000), "request timeout").spec());
  s.add(
      config_key<std::string>("log.level", "info", one_of({"debug", "info", "warn", "error"}), "log verbosity").spec());
  s.add(config_key<bool>("feature.new_ui", false, {}, "serve the new UI").spec());
  s.add(config_key<double>("limits.sample_ratio", 0.1, in_range(0.0, 1.0), "fraction of requests traced").spec());
  return s;
}

schema schema::from_json(std::string_view text, const std::string& origin) {
  return totally(origin, [&] {
    const parse_limits limits;
    reject_nul(text, origin);
    nlohmann::json j;
    schema_reader reader(j, text, origin, limits);
    nlohmann::json::sax_parse(text.begin(), text.end(), &reader);
    if (!j.is_object() || !j.contains("keys") || !j["keys"].is_object())
      fail(origin, 0, "", "a schema is an object with a \"keys\" object");
    for (const auto& [field, _] : j.items()) {
      if (field != "keys" && field != "allow_unknown")
        fail(origin, 0, "", fmt::format("unknown top-level field '{}' (keys, allow_unknown)", field));
    }
    schema s;
    if (j.contains("allow_unknown")) {
      if (!j["allow_unknown"].is_boolean()) fail(origin, 0, "", "field \"allow_unknown\" must be true or false");
      s.allow_unknown(j["allow_unknown"].get<bool>());
    }
    problem_list problems(origin, limits.max_problems);
    static const std::set<std::string> known_fields{"type",   "default",   "required",         "min",        "max",
                                                    "one_of", "non_empty", "allow_non_finite", "description"};
    for (const auto& item : j["keys"].items()) {
      // Plain names, not a structured binding: clang 14 cannot capture those.
      const std::string name = item.key();
      const nlohmann::json& d = item.value();
      // Each problem of one key's description ends that key; the others are still checked.
      try {
        s.add(key_from_json(name, d, known_fields, origin));
      } catch (const config_error& e) {
        for (const auto& p : e.problems()) problems.add(p.line, p.key, p.problem);
      } catch (const std::invalid_argument& e) {
        problems.add(0, name, e.what());
      }
    }
    problems.throw_if_any();
    return s;
  });
}

schema schema::from_json_file(const std::filesystem::path& file) {
  const std::string text = read_config_file(file, parse_limits{}.max_file_bytes);
  return from_json(text, file.string());
}

// --- settings: parse_document's two halves, for sources and layers -------------

file_format format_for(const std::filesystem::path& file, file_format format) noexcept {
  if (format != file_format::automatic) return format;
  const auto ext = file.extension();
  if (ext == ".json") return file_format::json;
  if (ext == ".toml") return file_format::toml;
  return format;
}

namespace {

// Text to settings in file order; problems go to `problems` (a syntax error
// or a limit throws them at once). A key set twice in the text (through a
// table and a dotted name) is a problem, and the second is dropped.
std::vector<raw_setting> parse_into(std::string_view text, file_format format, const std::string& origin,
                                    const parse_limits& limits, problem_list& problems) {
  reject_nul(text, origin);
  if (format == file_format::automatic) format = sniff(text);
  std::vector<raw_entry> raw = format == file_format::json ? parse_json(text, origin, limits, problems)
                                                           : parse_toml(text, origin, limits, problems);
  std::vector<raw_setting> out;
  out.reserve(raw.size());                // no reallocation: `first` views the keys in `out`
  std::map<std::string_view, int> first;  // key -> the line that set it first
  for (auto& r : raw) {
    if (const auto it = first.find(r.key); it != first.end()) {
      problems.add(r.line, r.key,
                   it->second > 0 ? fmt::format("set twice (first at line {})", it->second) : "set twice");
      continue;
    }
    raw_setting rs;
    rs.key = std::move(r.key);
    rs.val = std::move(r.val);
    rs.origin = origin;
    rs.line = r.line;
    out.push_back(std::move(rs));
    first.emplace(out.back().key, out.back().line);
  }
  return out;
}

// A text setting (environment variable, etcd plain value) as the schema's
// type; nullopt with `why` set if it is not one.
std::optional<value> from_text(const std::string& t, const key_spec& spec, std::string& why) {
  auto bad = [&](std::string_view what) -> std::optional<value> {
    why = fmt::format("expected {}, found text '{}'{}",
                      spec.duration ? std::string_view("a duration") : kind_name(spec.kind), t, what);
    return std::nullopt;
  };
  switch (spec.kind) {
    case value::kind::boolean: {
      std::string low(t);
      std::transform(low.begin(), low.end(), low.begin(), [](unsigned char c) { return std::tolower(c); });
      if (low == "true" || low == "1") return value(true);
      if (low == "false" || low == "0") return value(false);
      return bad(" (true, false, 1 or 0)");
    }
    case value::kind::int64: {
      std::int64_t v = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec == std::errc() && end == t.data() + t.size() && !t.empty()) return value(v);
      if (spec.duration) {
        if (const auto ms = parse_duration_ms(t)) return value(*ms);
        return bad(" (like 250ms, 2s, 1m30s, 1h; or an integer of milliseconds)");
      }
      if (ec == std::errc::result_out_of_range) return bad(": out of the int64 range");
      return bad("");
    }
    case value::kind::float64: {
      double v = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec == std::errc::result_out_of_range) return bad(": out of the double range");
      if (ec != std::errc() || end != t.data() + t.size() || t.empty()) return bad("");
      if (!std::isfinite(v) && !spec.allow_non_finite)
        return bad(": not a finite number (the schema does not allow inf or nan here)");
      return value(v);
    }
    default:
      break;
  }
  return value(t);  // string: as it is
}

// Settings (each key once) checked against the schema, defaults filled;
// problems go to `problems`, each naming its setting's origin (or `name`).
document validate_into(std::vector<raw_setting>& settings, const schema& s, const std::string& name,
                       problem_list& problems) {
  std::map<std::string, entry> out;
  std::set<std::string_view> in_file;  // keys the settings set, accepted or not
  for (auto& r : settings) {
    const std::string& origin = r.origin.empty() ? name : r.origin;
    auto problem = [&](std::string what) { problems.add_at(origin, r.line, r.key, std::move(what)); };
    in_file.insert(r.key);
    const key_spec* spec = s.find(r.key);
    if (spec && r.is_text && r.val.which() == value::kind::string) {
      std::string why;
      auto v = from_text(*r.val.get_if<std::string>(), *spec, why);
      if (!v) {
        problem(std::move(why));
        continue;
      }
      r.val = std::move(*v);
    }
    if (r.val.which() == value::kind::float64 && !std::isfinite(*r.val.get_if<double>())) {
      if (!spec || !spec->allow_non_finite || spec->kind != value::kind::float64) {
        problem(fmt::format("{} is not a finite number (the schema does not allow inf or nan here)", r.val));
        continue;
      }
    }
    if (!spec) {
      if (!s.allows_unknown()) {
        std::string msg = "unknown key (not in the schema)";
        if (!problems.full()) {
          if (auto near = suggest(r.key, s); !near.empty()) msg += fmt::format("; did you mean '{}'?", near);
        }
        problem(std::move(msg));
        continue;
      }
    } else {
      if (spec->duration && r.val.which() == value::kind::string) {
        const auto ms = parse_duration_ms(*r.val.get_if<std::string>());
        if (!ms) {
          problem(fmt::format("'{}' is not a duration (like 250ms, 2s, 1m30s, 1h; or an integer of milliseconds)",
                              *r.val.get_if<std::string>()));
          continue;
        }
        r.val = value(*ms);
      }
      if (spec->kind == value::kind::float64 && r.val.which() == value::kind::int64) {
        r.val = value(static_cast<double>(*r.val.get_if<std::int64_t>()));
      }
      if (r.val.which() != spec->kind) {
        problem(fmt::format("expected {}, found {}",
                            spec->duration ? std::string_view("a duration") : kind_name(spec->kind),
                            r.val.type_name()));
        continue;
      }
      if (spec->check) {
        std::string why;
        try {
          why = spec->check(r.val);
        } catch (const std::exception& e) {
          why = fmt::format("the key's validator threw: {}", e.what());
        }
        if (!why.empty()) {
          problem(std::move(why));
          continue;
        }
      }
    }
    const int line = r.line;
    entry e{r.key, std::move(r.val), true, line, r.origin};
    if (auto [it, fresh] = out.emplace(r.key, std::move(e)); !fresh)
      problem(it->second.line > 0 && it->second.origin == r.origin
                  ? fmt::format("set twice (first at line {})", it->second.line)
                  : "set twice");
  }
  for (const auto& spec : s.keys()) {
    if (out.count(spec.name)) continue;
    if (spec.required) {
      // Not "required" if a setting set it and the value was rejected: that problem is reported already.
      if (!in_file.count(spec.name)) problems.add_at(name, 0, spec.name, "required, but not set");
      continue;
    }
    out.emplace(spec.name, entry{spec.name, spec.default_value, false, 0, {}});
  }
  document doc;
  doc.file = name;
  doc.entries.reserve(out.size());
  for (auto& [k, e] : out) doc.entries.push_back(std::move(e));
  return doc;
}

}  // namespace

std::vector<raw_setting> parse_settings(std::string_view text, file_format format, const std::string& origin,
                                        const parse_limits& limits) {
  return totally(origin, [&] {
    problem_list problems(origin, limits.max_problems);
    auto out = parse_into(text, format, origin, limits, problems);
    problems.throw_if_any();
    return out;
  });
}

document validate_settings(std::vector<raw_setting> settings, const schema& s, const std::string& name,
                           const parse_limits& limits) {
  return totally(name, [&] {
    problem_list problems(name, limits.max_problems);
    document doc = validate_into(settings, s, name, problems);
    problems.throw_if_any();
    return doc;
  });
}

document parse_document(std::string_view text, file_format format, const std::string& origin, const schema& s,
                        const parse_limits& limits) {
  return totally(origin, [&] {
    // One list for both halves: the syntax problems and the schema's, at once.
    problem_list problems(origin, limits.max_problems);
    auto settings = parse_into(text, format, origin, limits, problems);
    document doc = validate_into(settings, s, origin, problems);
    problems.throw_if_any();
    return doc;
  });
}

document load_document(const std::filesystem::path& file, const schema& s, file_format format,
                       const parse_limits& limits) {
  const std::string text = read_config_file(file, limits.max_file_bytes);
  return parse_document(text, format_for(file, format), file.string(), s, limits);
}

}  // namespace polymap::config
