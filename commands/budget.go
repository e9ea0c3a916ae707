package commands

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/genls/genls/stream"
)

// A prompt must fit what the server accepts: prompt tokens plus
// max_new_tokens within its limits. The document around the selection or
// cursor (.Prefix and .Suffix) is what gives way: it is cut at line
// boundaries, keeping the lines nearest the cursor, until the prompt fits
// the budget InputBudget computes. The selection itself is never cut.

// TokenCounter counts the tokens of a prompt; exact is false when the
// count is an estimate. *stream.Client is one.
type TokenCounter interface {
	CountTokens(ctx context.Context, text string) (n int, exact bool, err error)
}

// DefaultContextTokens is the context (prompt plus generation) assumed of
// a server that publishes no limit and for which none is configured. 4,096
// tokens is what the small models people run locally accept at the least:
// Ollama gives a model a 4k context by default on machines with less than
// 24 GiB of video memory, and the code models it and llama.cpp serve were
// trained with 4k to 128k. An older Ollama's 2k default is smaller, but
// Ollama cuts a long prompt itself rather than refusing it.
const DefaultContextTokens = 4096

// MinInputBudget is the least budget InputBudget gives, so that a
// max_new_tokens close to the whole context still leaves room for the
// selection and a few lines around it; a server whose max_input_tokens is
// smaller still gets no more than that.
const MinInputBudget = 64

// InputBudget returns how many tokens a prompt may hold: the least of what
// is known of l.MaxInputTokens, l.MaxTotalTokens minus maxNewTokens (the
// server refuses a prompt whose tokens plus max_new_tokens exceed it), and
// configured (the context.max_input_tokens setting) when positive; with
// nothing known, DefaultContextTokens minus maxNewTokens. It is never
// below MinInputBudget, unless l.MaxInputTokens is. maxNewTokens ≤ 0 means
// stream.DefaultMaxNewTokens, which a request without one asks for.
func InputBudget(l stream.Limits, maxNewTokens, configured int) int {
	if maxNewTokens <= 0 {
		maxNewTokens = stream.DefaultMaxNewTokens
	}
	budget, known := 0, false
	take := func(n int) {
		if !known || n < budget {
			budget, known = n, true
		}
	}
	if l.MaxInputTokens > 0 {
		take(l.MaxInputTokens)
	}
	if l.MaxTotalTokens > 0 {
		take(l.MaxTotalTokens - maxNewTokens)
	}
	if configured > 0 {
		take(configured)
	}
	if !known {
		budget = DefaultContextTokens - maxNewTokens
	}
	floor := MinInputBudget
	if l.MaxInputTokens > 0 {
		floor = min(floor, l.MaxInputTokens)
	}
	return max(budget, floor)
}

// PrefixShare is the part of the context room that goes to the text before
// the cursor when a prompt uses the text on both sides (fill-in-the-middle),
// in quarters: 3 to 1, as llama.cpp's server splits an infill prompt
// (tools/server, format_infill: "ratio prefix:suffix = 3:1"). The text
// before the cursor is what the model continues; the text after mostly
// tells it where to stop. A side that needs less than its share leaves the
// rest to the other.
const PrefixShare = 3

// estimateMargin is added to estimates when the counter fails, in
// percent: the estimate never falls short for ordinary code, and the
// margin covers some of the text that is not.
const estimateMargin = 10

// maxCounts bounds the counter calls FitPrompt makes after the first.
const maxCounts = 8

// TooLongError is a prompt that does not fit its budget even with none of
// the document around the selection: the selection (or the template)
// alone is too long.
type TooLongError struct {
	// Tokens is the prompt's size without the text around the selection;
	// Exact is false when it is an estimate.
	Tokens int
	Exact  bool
	// Budget is the most tokens the prompt may hold.
	Budget int
}

func (e *TooLongError) Error() string {
	size := fmt.Sprintf("%d tokens", e.Tokens)
	if !e.Exact {
		size = fmt.Sprintf("about %d tokens (estimated)", e.Tokens)
	}
	return fmt.Sprintf("the prompt is too long: without any of the document around the selection it is %s, over its budget of %d (what the endpoint accepts less max_new_tokens, or context.max_input_tokens); select less text, or lower max_new_tokens", size, e.Budget)
}

// FitPrompt returns in with Prefix and Suffix cut so that build(in), the
// whole prompt, makes at most budget tokens. Prefix keeps its end and
// Suffix its beginning, each cut at a line boundary (a kept Prefix starts
// a line; a kept Suffix ends one); a side the prompt does not use is left
// as it is. When the prompt uses both (fill-in-the-middle), they share the
// room 3 to 1 (PrefixShare). Nothing else is cut, the selection and the
// instruction never: if the prompt is over budget without any of Prefix
// and Suffix, the error is a *TooLongError naming the numbers.
//
// build must return all the text the prompt's request carries that the
// counter should count (for a chat backend, the system message too; its
// template adds a few tokens more, which the budget should leave room
// for).
//
// Counting is the counter's when it counts exactly: the whole prompt
// first when its estimate is near the budget, then the prompts of a few
// cuts chosen by estimate and narrowed by whole lines; maxCounts + 2 calls
// at most, usually 2 to 4. When the counter only estimates, the cut is
// made by stream.EstimateTokens, which over-counts; when it fails, by the
// same estimate with a 10% margin. A nil counter means estimating. A
// budget of 0 or less means none: in is returned as it is.
func FitPrompt(ctx context.Context, counter TokenCounter, budget int, in PromptInput, build func(PromptInput) (string, error)) (PromptInput, error) {
	if budget <= 0 {
		return in, nil
	}
	f, err := newFitter(ctx, counter, budget, in, build)
	if err != nil {
		return in, err
	}
	if counter == nil {
		return f.byEstimate(100)
	}
	out, err := f.byCount()
	var ce *counterError
	switch {
	case errors.As(err, &ce) && ctx.Err() != nil:
		return in, ctx.Err()
	case errors.As(err, &ce) && ce.estimated:
		return f.byEstimate(100)
	case errors.As(err, &ce):
		return f.byEstimate(100 + estimateMargin)
	}
	return out, err
}

// A cut keeps the p pieces of Prefix nearest the cursor and the s first
// pieces of Suffix; a piece is a line with its line break, the cursor's
// line's part before or after the cursor being a piece of its own.
type cut struct{ p, s int }

type fitter struct {
	ctx     context.Context
	counter TokenCounter
	budget  int
	in      PromptInput
	build   func(PromptInput) (string, error)

	// prefixStart[k] is where Prefix starts when k pieces are kept;
	// prefixCost[k] their estimated tokens. suffixEnd and suffixCost are
	// the same for Suffix.
	prefixStart, prefixCost []int
	suffixEnd, suffixCost   []int
	all                     cut

	counted map[cut]int
}

// counterError is a counter's failure, or its saying it only estimates.
type counterError struct {
	estimated bool
	err       error
}

func (e *counterError) Error() string {
	if e.estimated {
		return "the counter estimates"
	}
	return e.err.Error()
}
func (e *counterError) Unwrap() error { return e.err }

func newFitter(ctx context.Context, counter TokenCounter, budget int, in PromptInput, build func(PromptInput) (string, error)) (*fitter, error) {
	f := &fitter{ctx: ctx, counter: counter, budget: budget, in: in, build: build, counted: map[cut]int{}}
	full, err := build(in)
	if err != nil {
		return nil, err
	}
	// A side the prompt does not use is never cut.
	noPrefix, noSuffix := in, in
	noPrefix.Prefix, noSuffix.Suffix = "", ""
	if p, err := build(noPrefix); err == nil && (p != full || in.Prefix == "") {
		f.prefixStart, f.prefixCost = prefixPieces(in.Prefix)
	} else {
		f.prefixStart, f.prefixCost = []int{0}, []int{0}
	}
	if s, err := build(noSuffix); err == nil && (s != full || in.Suffix == "") {
		f.suffixEnd, f.suffixCost = suffixPieces(in.Suffix)
	} else {
		f.suffixEnd, f.suffixCost = []int{len(in.Suffix)}, []int{0}
	}
	f.all = cut{len(f.prefixStart) - 1, len(f.suffixEnd) - 1}
	return f, nil
}

// prefixPieces splits a Prefix into lines from its end: start[k] is where
// the text of the k pieces nearest the cursor begins, cost[k] their
// estimate. A piece begins after a line break.
func prefixPieces(text string) (start, cost []int) {
	start, cost = []int{len(text)}, []int{0}
	for end := len(text); end > 0; {
		// The piece ending at end starts after the line break before its
		// last byte (which may be its own line break), or at 0.
		i := strings.LastIndexByte(text[:end-1], '\n') + 1
		start = append(start, i)
		cost = append(cost, cost[len(cost)-1]+estimate(text[i:end]))
		end = i
	}
	return start, cost
}

// suffixPieces splits a Suffix into lines from its beginning: end[k] is
// where the text of the k first pieces ends, cost[k] their estimate. A
// piece ends with its line break.
func suffixPieces(text string) (end, cost []int) {
	end, cost = []int{0}, []int{0}
	for begin := 0; begin < len(text); {
		j := len(text)
		if i := strings.IndexByte(text[begin:], '\n'); i >= 0 {
			j = begin + i + 1
		}
		end = append(end, j)
		cost = append(cost, cost[len(cost)-1]+estimate(text[begin:j]))
		begin = j
	}
	return end, cost
}

// estimate is stream.EstimateTokens without its beginning-of-sequence
// token, which makes it add up over the lines of a text.
func estimate(text string) int { return stream.EstimateTokens(text) - 1 }

// apply returns the input with cut c.
func (f *fitter) apply(c cut) PromptInput {
	out := f.in
	out.Prefix = f.in.Prefix[f.prefixStart[c.p]:]
	out.Suffix = f.in.Suffix[:f.suffixEnd[c.s]]
	return out
}

// cutFor returns the cut that spends room estimated tokens on the
// document: PrefixShare quarters of it before the cursor and the rest
// after, a side's unused share going to the other, and on each side the
// most whole pieces nearest the cursor that fit its share. A larger room
// never keeps less.
func (f *fitter) cutFor(room int) cut {
	needP, needS := f.prefixCost[f.all.p], f.suffixCost[f.all.s]
	if room >= needP+needS {
		return f.all
	}
	shareP, shareS := room, room
	if f.all.p > 0 && f.all.s > 0 {
		shareS = room - room*PrefixShare/4
		shareP = room - shareS
		if needS < shareS {
			shareP = room - needS
		} else if needP < shareP {
			shareS = room - needP
		}
	}
	return cut{fit(f.prefixCost, shareP), fit(f.suffixCost, shareS)}
}

// fit returns the most pieces whose cumulative cost is within share.
func fit(cost []int, share int) int {
	return max(sort.Search(len(cost), func(k int) bool { return cost[k] > share })-1, 0)
}

// roomOf is the estimated room cut c spends.
func (f *fitter) roomOf(c cut) int { return f.prefixCost[c.p] + f.suffixCost[c.s] }

// prompt builds the prompt of cut c.
func (f *fitter) prompt(c cut) (string, error) { return f.build(f.apply(c)) }

// count returns the counter's count of the prompt of cut c.
func (f *fitter) count(c cut) (int, error) {
	if n, ok := f.counted[c]; ok {
		return n, nil
	}
	p, err := f.prompt(c)
	if err != nil {
		return 0, err
	}
	n, exact, err := f.counter.CountTokens(f.ctx, p)
	if err != nil {
		return 0, &counterError{err: err}
	}
	if !exact {
		return 0, &counterError{estimated: true}
	}
	f.counted[c] = n
	return n, nil
}

// byCount cuts by the counter's counts. It narrows the room (in estimated
// tokens) between the largest cut counted to fit and the smallest counted
// not to: the next room is interpolated between the two when both are
// counted, else stepped from the one that is by the last count's ratio of
// tokens to estimate. It stops when they are a line apart, the fit is
// within 1/32 of the budget, or the counts run out.
func (f *fitter) byCount() (PromptInput, error) {
	full, err := f.prompt(f.all)
	if err != nil {
		return f.in, err
	}
	fullEstimate := stream.EstimateTokens(full)
	fixed := fullEstimate - f.roomOf(f.all) // the prompt's estimate without the document
	ratio := 1.0                            // tokens counted per token estimated
	lo, hi := span{room: -1}, span{room: f.roomOf(f.all) + 1}
	// The whole prompt is counted only when it may fit: the estimate is
	// never less than the count for ordinary text, nor measured more than
	// about twice it. A huge document is not sent to be counted.
	if fullEstimate <= 3*f.budget {
		n, err := f.count(f.all)
		if err != nil {
			return f.in, err
		}
		if n <= f.budget {
			return f.in, nil
		}
		hi = span{room: f.roomOf(f.all), count: n, counted: true}
		ratio = float64(n) / float64(fullEstimate)
	}
	for counts, steps := 0, 0; counts < maxCounts && steps < 1000; steps++ {
		lower := max(lo.room, 0)
		if hi.room-lower <= 1 || (lo.counted && f.budget-lo.count <= f.budget/32) {
			break
		}
		var room int
		switch {
		case lo.counted && hi.counted:
			room = lo.room + int(float64(f.budget-lo.count)*float64(hi.room-lo.room)/float64(hi.count-lo.count))
		case lo.counted:
			room = lo.room + int(float64(f.budget-lo.count)/ratio)
		default:
			room = int(float64(f.budget)/ratio*0.98) - fixed
		}
		if room <= lower || room >= hi.room {
			switch {
			case hi.counted:
				room = lower + (hi.room-lower)/2
			case room >= hi.room:
				room = hi.room - 1 // all of it: it has not been counted
			default:
				room = lower + 1
			}
		}
		c := f.cutFor(room)
		if lo.counted && c == f.cutFor(lo.room) {
			lo.room = room // the same text as the fit: look further
			continue
		}
		if hi.counted && c == f.cutFor(hi.room) {
			hi.room = room
			continue
		}
		n, err := f.count(c)
		if err != nil {
			return f.in, err
		}
		counts++
		if n <= f.budget {
			lo = span{room: room, count: n, counted: true}
		} else {
			hi = span{room: room, count: n, counted: true}
		}
		if p, err := f.prompt(c); err == nil {
			ratio = float64(n) / float64(stream.EstimateTokens(p))
		}
	}
	if !lo.counted {
		// No cut was counted to fit: the prompt without the document
		// must, or the selection is too long.
		none := cut{}
		n, err := f.count(none)
		if err != nil {
			return f.in, err
		}
		if n > f.budget {
			return f.in, &TooLongError{Tokens: n, Exact: true, Budget: f.budget}
		}
		return f.apply(none), nil
	}
	return f.apply(f.cutFor(lo.room)), nil
}

// span is a room byCount tried, and its count.
type span struct {
	room, count int
	counted     bool
}

// byEstimate cuts by stream.EstimateTokens scaled by percent/100: the
// prompt's estimate may be at most budget·100/percent.
func (f *fitter) byEstimate(percent int) (PromptInput, error) {
	limit := f.budget * 100 / percent
	estimateOf := func(c cut) (int, error) {
		p, err := f.prompt(c)
		if err != nil {
			return 0, err
		}
		return stream.EstimateTokens(p), nil
	}
	n, err := estimateOf(f.all)
	if err != nil || n <= limit {
		return f.in, err
	}
	fixed, err := estimateOf(cut{})
	if err != nil {
		return f.in, err
	}
	if fixed > limit {
		return f.in, &TooLongError{Tokens: (fixed*percent + 99) / 100, Budget: f.budget}
	}
	room := limit - fixed
	for {
		c := f.cutFor(room)
		n, err := estimateOf(c)
		if err != nil {
			return f.in, err
		}
		if n <= limit || c == (cut{}) {
			return f.apply(c), nil
		}
		room -= n - limit // a side the template uses twice costs twice
	}
}
