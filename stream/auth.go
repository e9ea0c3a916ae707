package stream

import (
	"os"
	"path/filepath"
	"strings"
)

// ResolveToken finds the API token the way huggingface_hub does: the explicit
// setting, else HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file named by
// HF_TOKEN_PATH, else $HF_HOME/token (HF_HOME defaults to
// ~/.cache/huggingface, itself under XDG_CACHE_HOME when that is set).
// The source says where the token was found, for `genls doctor` and logs,
// which never show the token itself; it is "none" when there is no token.
// A nil getenv means os.Getenv.
func ResolveToken(setting string, getenv func(string) string) (token, source string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if t := strings.TrimSpace(setting); t != "" {
		return t, "setting endpoint.token"
	}
	for _, name := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := strings.TrimSpace(getenv(name)); t != "" {
			return t, "environment variable " + name
		}
	}
	var path string
	if p := getenv("HF_TOKEN_PATH"); p != "" {
		path = p
	} else {
		home := getenv("HF_HOME")
		if home == "" {
			cache := getenv("XDG_CACHE_HOME")
			if cache == "" {
				if h := getenv("HOME"); h != "" {
					cache = filepath.Join(h, ".cache")
				} else if h, err := os.UserHomeDir(); err == nil {
					cache = filepath.Join(h, ".cache")
				}
			}
			if cache != "" {
				home = filepath.Join(cache, "huggingface")
			}
		}
		if home != "" {
			path = filepath.Join(home, "token")
		}
	}
	if path != "" {
		if b, err := os.ReadFile(path); err == nil {
			if t := strings.TrimSpace(string(b)); t != "" {
				return t, "file " + path
			}
		}
	}
	return "", "none"
}

// MaskToken shows enough of a token to recognise it and nothing more.
func MaskToken(t string) string {
	if t == "" {
		return "(none)"
	}
	if len(t) <= 8 {
		return strings.Repeat("*", len(t))
	}
	return t[:3] + strings.Repeat("*", 6) + t[len(t)-2:]
}
