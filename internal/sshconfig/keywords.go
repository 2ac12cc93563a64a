package sshconfig

import "strings"

// Keyword classes.
const (
	// ClassHonoured keywords are read and affect Result (or, for Host,
	// Match, Include and IgnoreUnknown, how the file is read).
	ClassHonoured = "honoured"
	// ClassIgnored keywords are accepted and have no effect in opsmop.
	ClassIgnored = "ignored"
	// ClassUnsupported keywords are an *Error from Lookup when they apply to
	// a host with a value other than their off value (Keyword.Off).
	ClassUnsupported = "unsupported"
)

// Keyword describes how opsmop treats one OpenSSH client keyword.
type Keyword struct {
	Name  string // as ssh_config(5) spells it
	Class string // ClassHonoured, ClassIgnored or ClassUnsupported
	Why   string // for ignored and unsupported keywords: why, and what to do instead
	// Off lists the values (lowercase) that leave an unsupported keyword
	// harmless; empty means every value is an error.
	Off []string
}

const (
	whyDeprecated  = "deprecated or removed in OpenSSH; ssh ignores it too"
	whyNoEffect    = "does not change where or how opsmop connects or verifies the server"
	whyForwarding  = "opsmop opens no forwardings, X11, tty or agent forwarding"
	whyAlgorithms  = "opsmop negotiates with golang.org/x/crypto/ssh's algorithm defaults"
	whyMux         = "opsmop keeps its own persistent connection per host"
	whyHostbased   = "opsmop authenticates with keys, the agent, passwords and keyboard-interactive only"
	whyStricterIgn = "ignoring it is stricter: opsmop checks host keys against known_hosts only"
)

// Keywords returns every keyword of OpenSSH 9.x and 10.x's client
// (readconf.c's table, aliases and deprecated names included) with how
// opsmop treats it. The slice is new on each call.
func Keywords() []Keyword {
	kws := honouredKeywords()
	kws = append(kws, unsupportedKeywords()...)
	kws = append(kws, ignoredKeywords()...)
	return kws
}

func honouredKeywords() []Keyword {
	names := []string{
		"Host", "Match", "Include", "IgnoreUnknown",
		"HostName", "User", "Port", "IdentityFile", "IdentityFile2",
		"CertificateFile", "IdentitiesOnly", "IdentityAgent", "ProxyJump",
		"UserKnownHostsFile", "GlobalKnownHostsFile",
		"StrictHostKeyChecking", "HashKnownHosts", "ConnectTimeout",
		"ServerAliveInterval", "ServerAliveCountMax", "AddressFamily",
		"PasswordAuthentication", "PubkeyAuthentication", "DSAAuthentication",
		"KbdInteractiveAuthentication", "ChallengeResponseAuthentication",
		"SKeyAuthentication", "TISAuthentication", "BatchMode",
	}
	kws := make([]Keyword, len(names))
	for i, n := range names {
		kws[i] = Keyword{Name: n, Class: ClassHonoured}
	}
	return kws
}

func unsupportedKeywords() []Keyword {
	return []Keyword{
		{"ProxyCommand", ClassUnsupported, "use ProxyJump (or opsmop_via in the inventory) for jump hosts", []string{"none"}},
		{"HostKeyAlias", ClassUnsupported, "opsmop looks host keys up under the host name and port; add a known_hosts line for the real name instead", nil},
		{"CanonicalizeHostname", ClassUnsupported, "write the full host name in HostName (or in the inventory) instead", []string{"no", "false"}},
		{"PKCS11Provider", ClassUnsupported, "load the PKCS#11 key into ssh-agent and use IdentityAgent instead", []string{"none"}},
		{"SmartcardDevice", ClassUnsupported, "load the key into ssh-agent and use IdentityAgent instead", []string{"none"}},
		{"KnownHostsCommand", ClassUnsupported, "write the host keys into a UserKnownHostsFile instead", []string{"none"}},
		{"BindAddress", ClassUnsupported, "opsmop lets the kernel choose the source address; remove it", nil},
		{"BindInterface", ClassUnsupported, "opsmop lets the kernel choose the source interface; remove it", nil},
		{"Tunnel", ClassUnsupported, "opsmop does not forward tun/tap devices; set Tunnel no", []string{"no", "false"}},
		{"RevokedHostKeys", ClassUnsupported, "opsmop cannot check a revocation list; remove the revoked keys from known_hosts", []string{"none"}},
		{"RefuseConnection", ClassUnsupported, "the config forbids connecting to this host", []string{"no", "false"}},
	}
}

func ignoredKeywords() []Keyword {
	groups := []struct {
		why   string
		names []string
	}{
		{whyDeprecated, []string{"Protocol", "Cipher", "FallBackToRsh", "GlobalKnownHostsFile2", "RhostsAuthentication", "UserKnownHostsFile2", "UseRoaming", "UseRsh", "UsePrivilegedPort", "AFSTokenPassing", "KerberosAuthentication", "KerberosTGTPassing", "RSAAuthentication", "RhostsRSAAuthentication", "CompressionLevel"}},
		{whyForwarding, []string{"ForwardAgent", "ForwardX11", "ForwardX11Trusted", "ForwardX11Timeout", "ExitOnForwardFailure", "XAuthLocation", "GatewayPorts", "RemoteForward", "LocalForward", "DynamicForward", "PermitRemoteOpen", "ClearAllForwardings", "StreamLocalBindMask", "StreamLocalBindUnlink", "TunnelDevice", "RequestTTY", "EscapeChar", "EnableEscapeCommandline", "ObscureKeystrokeTiming", "SessionType", "StdinNull", "ForkAfterAuthentication", "LocalCommand", "PermitLocalCommand", "RemoteCommand", "SendEnv", "SetEnv"}},
		{whyAlgorithms, []string{"Ciphers", "MACs", "KexAlgorithms", "HostKeyAlgorithms", "CASignatureAlgorithms", "PubkeyAcceptedAlgorithms", "PubkeyAcceptedKeyTypes", "HostbasedAcceptedAlgorithms", "HostbasedKeyTypes", "RequiredRSASize", "WarnWeakCrypto", "RekeyLimit", "Compression", "FingerprintHash"}},
		{whyMux, []string{"ControlMaster", "ControlPath", "ControlPersist"}},
		{"it only affects ProxyCommand, which opsmop refuses; ssh ignores it with ProxyJump", []string{"ProxyUseFdpass"}},
		{whyHostbased, []string{"HostbasedAuthentication", "EnableSSHKeysign", "GSSAPIAuthentication", "GSSAPIDelegateCredentials", "KbdInteractiveDevices", "PreferredAuthentications", "NumberOfPasswordPrompts", "AddKeysToAgent", "SecurityKeyProvider"}},
		{whyStricterIgn, []string{"CheckHostIP", "VerifyHostKeyDNS", "NoHostAuthenticationForLocalhost", "UpdateHostKeys", "VisualHostKey"}},
		{whyNoEffect, []string{"CanonicalDomains", "CanonicalizeFallbackLocal", "CanonicalizeMaxDots", "CanonicalizePermittedCNAMEs", "ConnectionAttempts", "TCPKeepAlive", "KeepAlive", "IPQoS", "LogLevel", "LogVerbose", "SyslogFacility", "Tag", "ChannelTimeout", "VersionAddendum"}},
	}
	var kws []Keyword
	for _, g := range groups {
		for _, n := range g.names {
			kws = append(kws, Keyword{Name: n, Class: ClassIgnored, Why: g.why})
		}
	}
	return kws
}

// keywordIndex maps lowercased keyword names to their entry.
func keywordIndex() map[string]Keyword {
	kws := Keywords()
	m := make(map[string]Keyword, len(kws))
	for _, k := range kws {
		m[strings.ToLower(k.Name)] = k
	}
	return m
}
