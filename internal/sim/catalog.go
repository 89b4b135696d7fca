package sim

// The catalog is the world the fleet lives in: what is installed where. It
// is fixed data; only who gets what, and when, is drawn from the seed.

// ProductName is the software.name every installation reports.
const ProductName = "Secure Connection"

// releases in order: installations start on the first ones and move up.
var releases = []string{
	"5.12.0.1104",
	"5.13.0.1188",
	"5.14.0.1231",
	"5.14.1.1240",
}

// Campaign is an upgrade campaign that offers one version to the
// installations on another, ramping up over a few days. A failing campaign
// fails most of its upgrades with the same installer error.
type Campaign struct {
	ID       string
	From, To int     // indexes into releases
	Start    float64 // fraction of the simulated period when it begins
	RampDays int     // days until every eligible installation is offered it
	FailRate float64 // probability that one attempt fails
	// ErrorType and ErrorCodes describe the failures.
	ErrorType  string
	ErrorCodes []string
}

// campaigns: two healthy ones, one broken (5.14.0 fails to install its
// network driver on most machines), and the fix that follows it.
var campaigns = []Campaign{
	{ID: "upd-5.13-wave1", From: 0, To: 1, Start: 0.10, RampDays: 6, FailRate: 0.03,
		ErrorType: "download_failed", ErrorCodes: []string{"0x80072EE2", "0x80072EFD"}},
	{ID: "upd-5.14-wave1", From: 1, To: 2, Start: 0.40, RampDays: 4, FailRate: 0.62,
		ErrorType: "driver_install_failed", ErrorCodes: []string{"0x80070643", "0x80070643", "0x80070643", "0xE0000247"}},
	{ID: "upd-5.14.1-fix", From: 1, To: 3, Start: 0.62, RampDays: 5, FailRate: 0.02,
		ErrorType: "disk_full", ErrorCodes: []string{"0x80070070"}},
	{ID: "upd-5.14.1-fix", From: 2, To: 3, Start: 0.62, RampDays: 3, FailRate: 0.02,
		ErrorType: "disk_full", ErrorCodes: []string{"0x80070070"}},
}

// FailingCampaign is the id of the campaign that is planted to fail.
const FailingCampaign = "upd-5.14-wave1"

type weighted[T any] struct {
	V T
	W float64
}

var editions = []weighted[string]{{"free", 60}, {"premium", 34}, {"business", 6}}

// country is where an installation connects from: its region profile, the
// languages people there use, the first-level subdivisions addresses are
// spread over, and the shops that sell licences there.
type country struct {
	Code         string
	Name         string
	Region       string
	Weight       float64
	Locales      []string
	Subdivisions []string
	Shops        []string
}

var countries = []country{
	{"DE", "Germany", "eu", 16, []string{"de-DE", "de-DE", "en-US"}, []string{"BY", "BE", "NW", "HH"}, []string{"https://www.mediamarkt.de", "https://www.amazon.de"}},
	{"FR", "France", "eu", 11, []string{"fr-FR", "fr-FR", "en-US"}, []string{"IDF", "ARA", "OCC"}, []string{"https://www.fnac.com", "https://www.amazon.fr"}},
	{"IT", "Italy", "eu", 8, []string{"it-IT"}, []string{"25", "62", "72"}, []string{"https://www.amazon.it"}},
	{"ES", "Spain", "eu", 7, []string{"es-ES", "ca-ES"}, []string{"MD", "CT", "AN"}, []string{"https://www.elcorteingles.es", "https://www.amazon.es"}},
	{"NL", "Netherlands", "eu", 5, []string{"nl-NL", "en-GB"}, []string{"NH", "ZH"}, []string{"https://www.bol.com"}},
	{"PL", "Poland", "eu", 5, []string{"pl-PL"}, []string{"14", "24"}, []string{"https://www.x-kom.pl", "https://allegro.pl"}},
	{"SE", "Sweden", "eu", 3, []string{"sv-SE", "en-GB"}, []string{"AB", "O"}, []string{"https://www.elgiganten.se"}},
	{"AT", "Austria", "eu", 2, []string{"de-AT"}, []string{"9", "6"}, []string{"https://www.amazon.de"}},
	{"GB", "United Kingdom", "uk", 14, []string{"en-GB"}, []string{"ENG", "SCT", "WLS"}, []string{"https://www.currys.co.uk", "https://www.amazon.co.uk"}},
	{"BR", "Brazil", "br", 13, []string{"pt-BR"}, []string{"SP", "RJ", "MG"}, []string{"https://www.magazineluiza.com.br", "https://www.mercadolivre.com.br"}},
	{"US", "United States", "us-ca", 16, []string{"en-US", "es-US"}, []string{"CA"}, []string{"https://www.bestbuy.com", "https://www.amazon.com"}},
}

// Shops every country uses besides its own.
var globalShops = []weighted[string]{
	{"https://store.secure-connection.example", 50},
	{"https://play.google.com", 12},
	{"https://apps.apple.com", 10},
}

// osRelease is one operating-system version with its builds and the update
// packages published for it, each from a fraction of the period on.
type osRelease struct {
	Type     string
	Version  string
	Build    string
	Editions []weighted[string]
	Arch     []weighted[string]
	Weight   float64
	// Updates: the base set everybody has, then monthly ones that
	// installations pick up some days after they appear.
	Base    []string
	Monthly []update
}

type update struct {
	ID    string
	Start float64 // fraction of the period when it is published
}

var winEditions = []weighted[string]{{"Home", 55}, {"Pro", 38}, {"Enterprise", 7}}
var amd64Mostly = []weighted[string]{{"amd64", 93}, {"arm64", 6}, {"386", 1}}

var osReleases = []osRelease{
	{Type: "windows", Version: "10 22H2", Build: "19045.5131", Editions: winEditions, Arch: amd64Mostly, Weight: 30,
		Base:    []string{"KB5011048", "KB5015684", "KB5043935"},
		Monthly: []update{{"KB5046613", 0.15}, {"KB5048652", 0.55}, {"KB5049981", 0.9}}},
	{Type: "windows", Version: "11 23H2", Build: "22631.4460", Editions: winEditions, Arch: amd64Mostly, Weight: 22,
		Base:    []string{"KB5027397", "KB5043080"},
		Monthly: []update{{"KB5046633", 0.15}, {"KB5048685", 0.55}, {"KB5050021", 0.9}}},
	{Type: "windows", Version: "11 24H2", Build: "26100.2314", Editions: winEditions, Arch: amd64Mostly, Weight: 14,
		Base:    []string{"KB5043080", "KB5044033"},
		Monthly: []update{{"KB5046617", 0.15}, {"KB5048667", 0.55}, {"KB5050009", 0.9}}},
	{Type: "macos", Version: "14.7", Build: "23H124", Editions: []weighted[string]{{"Sonoma", 1}}, Arch: []weighted[string]{{"arm64", 80}, {"amd64", 20}}, Weight: 6,
		Base:    []string{"XProtectPlistConfigData 5278", "MRTConfigData 1.93"},
		Monthly: []update{{"macOS Sonoma 14.7.1", 0.2}, {"XProtectPayloads 147", 0.6}}},
	{Type: "macos", Version: "15.1", Build: "24B83", Editions: []weighted[string]{{"Sequoia", 1}}, Arch: []weighted[string]{{"arm64", 92}, {"amd64", 8}}, Weight: 6,
		Base:    []string{"XProtectPlistConfigData 5278"},
		Monthly: []update{{"macOS Sequoia 15.1.1", 0.3}, {"XProtectPayloads 147", 0.6}}},
	{Type: "linux", Version: "24.04.1 LTS (Noble Numbat)", Build: "6.8.0-49-generic", Editions: []weighted[string]{{"Ubuntu", 1}}, Arch: []weighted[string]{{"amd64", 95}, {"arm64", 5}}, Weight: 3,
		Base:    []string{"openssl 3.0.13-0ubuntu3.4", "libc6 2.39-0ubuntu8.3"},
		Monthly: []update{{"linux-image-6.8.0-50-generic 6.8.0-50.51", 0.35}}},
	{Type: "linux", Version: "12 (bookworm)", Build: "6.1.0-27-amd64", Editions: []weighted[string]{{"Debian", 1}}, Arch: []weighted[string]{{"amd64", 97}, {"arm64", 3}}, Weight: 1,
		Base:    []string{"openssl 3.0.15-1~deb12u1", "libc6 2.36-9+deb12u9"},
		Monthly: []update{{"linux-image-6.1.0-28-amd64 6.1.119-1", 0.5}}},
	{Type: "android", Version: "14", Build: "UP1A.231005.007", Editions: []weighted[string]{{"Phone", 1}}, Arch: []weighted[string]{{"arm64", 98}, {"arm", 2}}, Weight: 9,
		Base:    []string{"2024-10-01"},
		Monthly: []update{{"2024-11-01", 0.3}, {"2024-12-01", 0.8}}},
	{Type: "ios", Version: "18.1", Build: "22B83", Editions: []weighted[string]{{"iPhone", 85}, {"iPad", 15}}, Arch: []weighted[string]{{"arm64", 1}}, Weight: 9,
		Base:    []string{"18.1"},
		Monthly: []update{{"18.1.1", 0.25}}},
}

// errorKinds are the kinds of UI errors; codes and controls follow a long
// tail, generated so that a few dominate and many are seen rarely.
var errorKinds = []weighted[string]{
	{"connection_failed", 40}, {"server_unreachable", 18}, {"license_check_failed", 9},
	{"ui_crash", 7}, {"settings_not_saved", 5}, {"update_check_failed", 8},
	{"certificate_untrusted", 6}, {"dns_leak_detected", 3}, {"kill_switch_error", 4},
}

// Number of distinct error codes and UI controls in the long tail.
const (
	errorCodeCount = 160
	controlCount   = 240
)

// controlNames are the building blocks of UI control ids.
var controlScreens = []string{"main", "settings", "servers", "account", "license", "tray", "onboarding", "support", "kill_switch", "split_tunnel", "protocol", "notifications"}
var controlWidgets = []string{"connect_button", "disconnect_button", "toggle", "list_item", "save_button", "menu", "search_box", "link", "refresh_button", "dialog_ok"}
