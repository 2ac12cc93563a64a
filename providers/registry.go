package providers

import (
	"github.com/opsmop/opsmop/policy"
)

// typeDef ties a resource type's declaration to its provider.
type typeDef struct {
	decl     policy.ResourceType
	provider Provider
}

// types lists every resource type, in documentation order. It is a
// function (not a package variable) so that no mutable state is shared.
func types() []typeDef {
	return []typeDef{
		{policy.ResourceType{Name: "file", New: func() any { return &FileSpec{} }, Identity: "path", Handler: true,
			Doc: "A regular file: contents (inline, a local file or a template) compared by sha256 on the host, mode, owner and group."}, fileProvider{}},
		{policy.ResourceType{Name: "template", New: func() any { return &TemplateSpec{} }, Identity: "path", Handler: true,
			Doc: "A file rendered from a local template: shorthand for a file with template."}, templateProvider{}},
		{policy.ResourceType{Name: "directory", New: func() any { return &DirectorySpec{} }, Identity: "path", Handler: true,
			Doc: "A directory with mode, owner and group, optionally applied recursively."}, directoryProvider{}},
		{policy.ResourceType{Name: "link", New: func() any { return &LinkSpec{} }, Identity: "path", Handler: true,
			Doc: "A symbolic link."}, linkProvider{}},
		{policy.ResourceType{Name: "line", New: func() any { return &LineSpec{} }, Identity: "path", Handler: true,
			Doc: "One line in a text file, added, replaced or removed (like Ansible's lineinfile)."}, lineProvider{}},
		{policy.ResourceType{Name: "shell", New: func() any { return &ShellSpec{} }, Identity: "cmd", Handler: true,
			Doc: "A command run with sh, with guards (creates, removes, unless, onlyif) and changed_when / failed_when."}, shellProvider{}},
		{policy.ResourceType{Name: "package", New: func() any { return &PackageSpec{} }, Identity: "name", Handler: false, Facts: true,
			Doc: "OS packages (apt, dnf, yum, apk, pacman), several in one transaction, or a local package file."}, packageProvider{}},
		{policy.ResourceType{Name: "service", New: func() any { return &ServiceSpec{} }, Identity: "service", Handler: true, Facts: true,
			Doc: "A system service (systemd or sysv init scripts): running state and start at boot."}, serviceProvider{}},
		{policy.ResourceType{Name: "user", New: func() any { return &UserSpec{} }, Identity: "name", Handler: false,
			Doc: "A local user account."}, userProvider{}},
		{policy.ResourceType{Name: "group", New: func() any { return &GroupSpec{} }, Identity: "name", Handler: false,
			Doc: "A local group."}, groupProvider{}},
		{policy.ResourceType{Name: "echo", New: func() any { return &EchoSpec{} }, Identity: "msg", Handler: true,
			Doc: "Shows a message; changes nothing."}, echoProvider{}},
		{policy.ResourceType{Name: "assert", New: func() any { return &AssertSpec{} }, Identity: "that", Handler: true,
			Doc: "Fails the host unless every expression is true."}, assertProvider{}},
	}
}

// Registry returns the declarations of every resource type, keyed by
// type name. Each call returns a fresh map.
func Registry() policy.Registry {
	r := policy.Registry{}
	for _, t := range types() {
		r[t.decl.Name] = t.decl
	}
	return r
}

// Lookup returns the provider for a type name, and false for an unknown
// type. Providers are stateless and safe for concurrent use.
func Lookup(typeName string) (Provider, bool) {
	for _, t := range types() {
		if t.decl.Name == typeName {
			return t.provider, true
		}
	}
	return nil, false
}
