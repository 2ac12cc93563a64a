package providers

import (
	"github.com/opsmop/opsmop/policy"
)

// typeDef ties a resource type's declaration to its provider.
type typeDef struct {
	decl     policy.ResourceType
	provider Provider
}

// define returns the typeDef of the type decl declares (its New left
// unset), whose spec is *S and whose provider is p: New returns a new *S
// and the provider is adapt's.
func define[S any, V interface {
	*S
	Validator
}](decl policy.ResourceType, p typed[S]) typeDef {
	decl.New = func() any { return new(S) }
	return typeDef{decl: decl, provider: adapt[S, V](decl.Name, p)}
}

// types lists every resource type, in documentation order. It is a
// function (not a package variable) so that no mutable state is shared.
func types() []typeDef {
	return []typeDef{
		define[FileSpec](policy.ResourceType{Name: "file", Identity: "path", Handler: true,
			Doc: "A regular file: contents (inline, a local file or a template) compared by sha256 on the host, mode, owner and group."}, fileProvider{}),
		define[TemplateSpec](policy.ResourceType{Name: "template", Identity: "path", Handler: true,
			Doc: "A file rendered from a local template: shorthand for a file with template."}, templateProvider{}),
		define[DirectorySpec](policy.ResourceType{Name: "directory", Identity: "path", Handler: true,
			Doc: "A directory with mode, owner and group, optionally applied recursively."}, directoryProvider{}),
		define[TreeSpec](policy.ResourceType{Name: "tree", Identity: "path", Handler: true,
			Doc: "A local directory copied recursively to the host (like Ansible's copy of a directory, or synchronize): one probe for the whole tree, one upload for all new and changed files, optional delete of what src does not have."}, treeProvider{}),
		define[LinkSpec](policy.ResourceType{Name: "link", Identity: "path", Handler: true,
			Doc: "A symbolic link."}, linkProvider{}),
		define[DownloadSpec](policy.ResourceType{Name: "download", Identity: "path", Handler: true,
			Doc: "A file downloaded from an http or https URL, on the host with curl or wget or through the controller, verified by sha256 before it is moved into place (like Ansible's get_url)."}, downloadProvider{}),
		define[LineSpec](policy.ResourceType{Name: "line", Identity: "path", Handler: true,
			Doc: "One line in a text file, added, replaced or removed (like Ansible's lineinfile)."}, lineProvider{}),
		define[UnarchiveSpec](policy.ResourceType{Name: "unarchive", Identity: "path", Handler: true,
			Doc: "An archive (.tar, .tar.gz, .tar.xz, .zip; local, or on the host with remote_src) checked on the controller for entries that would land outside path and extracted into path on the host (like Ansible's unarchive), recorded by the archive's sha256 so it is not extracted again."}, unarchiveProvider{}),
		define[ShellSpec](policy.ResourceType{Name: "shell", Identity: "cmd", Handler: true,
			Doc: "A command run with sh, with guards (creates, removes, unless, onlyif) and changed_when / failed_when."}, shellProvider{}),
		define[GitSpec](policy.ResourceType{Name: "git", Identity: "path", Handler: true,
			Doc: "A git clone checked out at a branch, tag or commit (like Ansible's git), compared by commit with what the version resolves to on the remote."}, gitProvider{}),
		define[PackageSpec](policy.ResourceType{Name: "package", Identity: "name", Handler: false, Facts: true,
			Doc: "OS packages (apt, dnf, yum, apk, pacman), several in one transaction, or a local package file."}, packageProvider{}),
		define[ServiceSpec](policy.ResourceType{Name: "service", Identity: "service", Handler: true, Facts: true,
			Doc: "A system service (systemd or sysv init scripts): running state and start at boot."}, serviceProvider{}),
		define[UserSpec](policy.ResourceType{Name: "user", Identity: "name", Handler: false,
			Doc: "A local user account."}, userProvider{}),
		define[AuthorizedKeySpec](policy.ResourceType{Name: "authorized_key", Identity: "user", Handler: false,
			Doc: "Public keys in a user's ~/.ssh/authorized_keys (like Ansible's authorized_key): added, updated or removed, other lines kept."}, authorizedKeyProvider{}),
		define[GroupSpec](policy.ResourceType{Name: "group", Identity: "name", Handler: false,
			Doc: "A local group."}, groupProvider{}),
		define[CronSpec](policy.ResourceType{Name: "cron", Identity: "name", Handler: false,
			Doc: "One entry in a user's crontab, marked by a comment #opsmop: NAME (like Ansible's cron)."}, cronProvider{}),
		define[EchoSpec](policy.ResourceType{Name: "echo", Identity: "msg", Handler: true,
			Doc: "Shows a message; changes nothing."}, echoProvider{}),
		define[AssertSpec](policy.ResourceType{Name: "assert", Identity: "that", Handler: true,
			Doc: "Fails the host unless every expression is true."}, assertProvider{}),
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
