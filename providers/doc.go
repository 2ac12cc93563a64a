// Package providers implements the resource types: each decides, from a
// read-only probe of the target, what would change (Check) and performs
// exactly that change (Apply). Providers speak plain POSIX sh.
//
// # A resource file
//
// Every resource type's file has the same order (several types in one
// file each have their block in turn, followed by the helpers):
//
//  1. the spec struct XSpec, one field per policy key, each with its
//     opsmop, doc (the key's documentation, rendered into
//     docs/resources) and where they apply enum, default, required and
//     local tags;
//  2. (*XSpec).Validate: every rule that needs no host (see Validator);
//  3. the provider type xProvider and its plan type xPlan (what Apply
//     does, private to the type);
//  4. labels: how the errors of Probe, Check and Apply name an instance;
//  5. Probe, then ProbeVars and ProbePath when the probe may run inline
//     and reads the ProbePrelude;
//  6. Check;
//  7. Apply;
//  8. the helpers of the above.
//
// # Adding a resource type
//
// Write its file in that order; its Probe, Check and Apply take the spec
// already cast and, for Probe and Check, validated: xProvider implements
// typed[XSpec] (and typedPathProber[XSpec] and InlineProber when its
// probe keeps the inline contract of connection.Probe). Then add it to
// types in registry.go with define, which declares its New and adapts
// the provider (adapt) to the Provider the engine calls. Document it in
// typeDocs (docs_test.go) and write docs/resources/TYPE.md with
// `go test ./providers -run TestDocs -update`; give it an invalid example
// in validate_test.go, and, for an inline probe, specs in
// TestInlineProbes.
package providers
