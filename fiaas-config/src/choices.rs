//! The flags whose value is one of a fixed set of strings, and `IntOrStr`.

use std::fmt;

use fiaas_spec::python;

/// Defines a flag value that is one of a fixed set of strings.
macro_rules! choice_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in the order `--help` lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The values as spelled on the command line, in the order of [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value as spelled on the command line, in config files and in Kubernetes objects.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text ),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Choice for $name {
            fn all() -> &'static [Self] {
                Self::ALL
            }

            fn text(self) -> &'static str {
                self.as_str()
            }
        }
    };
}

/// Lets one parser handle every [`choice_enum!`] type for config-file values (clap checks
/// command-line values itself).
pub(crate) trait Choice: Copy + 'static {
    fn all() -> &'static [Self];
    fn text(self) -> &'static str;
}

choice_enum! {
    /// `--log-format`: the daemon's own log format, also passed to apps as `LOG_FORMAT`.
    LogFormat {
        /// Human-readable lines.
        Plain => "plain",
        /// One JSON object per line.
        Json => "json",
    }
}

choice_enum! {
    /// `--service-type`: `spec.type` of the Services created for apps.
    ServiceType {
        /// Reachable inside the cluster only.
        ClusterIP => "ClusterIP",
        /// Also exposed on every node.
        NodePort => "NodePort",
        /// Also exposed through a cloud load balancer.
        LoadBalancer => "LoadBalancer",
    }
}

choice_enum! {
    /// `--infrastructure`: passed to apps as the deprecated `FIAAS_INFRASTRUCTURE`.
    Infrastructure {
        /// Self-managed cluster.
        Diy => "diy",
        /// Google Kubernetes Engine.
        Gke => "gke",
    }
}

choice_enum! {
    /// `--pdb-unhealthy-pod-eviction-policy`: `unhealthyPodEvictionPolicy` of PodDisruptionBudgets.
    UnhealthyPodEvictionPolicy {
        /// Evict unhealthy pods only while the budget holds.
        IfHealthyBudget => "IfHealthyBudget",
        /// Evict unhealthy pods even when the budget is not met.
        AlwaysAllow => "AlwaysAllow",
    }
}

choice_enum! {
    /// `--use-ingress-tls`: whether Ingresses get TLS.
    UseIngressTls {
        /// Never, whatever the app asks.
        Disabled => "disabled",
        /// Only for apps that ask for it.
        DefaultOff => "default_off",
        /// Unless the app turns it off.
        DefaultOn => "default_on",
    }
}

/// A value that is an integer when it parses as one and a string otherwise (upstream
/// `_int_or_unicode`), as Kubernetes' `IntOrString` fields such as `maxSurge`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IntOrStr {
    /// The value parsed as a (Python) integer.
    Int(i64),
    /// Any other value, kept as given.
    Str(String),
}

impl IntOrStr {
    /// Parses like upstream: `"0"` is `Int(0)`, `"25%"` is `Str("25%")`. Never fails.
    pub fn parse(s: &str) -> IntOrStr {
        match python::int(s) {
            Some(n) => IntOrStr::Int(n),
            None => IntOrStr::Str(s.to_string()),
        }
    }
}

impl fmt::Display for IntOrStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrStr::Int(n) => write!(f, "{n}"),
            IntOrStr::Str(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_str_parses_like_python_int() {
        assert_eq!(IntOrStr::parse("0"), IntOrStr::Int(0));
        assert_eq!(IntOrStr::parse("-3"), IntOrStr::Int(-3));
        assert_eq!(IntOrStr::parse("+4"), IntOrStr::Int(4));
        assert_eq!(IntOrStr::parse(" 7 "), IntOrStr::Int(7));
        assert_eq!(IntOrStr::parse("1_000"), IntOrStr::Int(1000));
        for text in [
            "25%",
            "",
            "1__0",
            "_1",
            "1_",
            "1.5",
            "0x10",
            "99999999999999999999",
        ] {
            assert_eq!(
                IntOrStr::parse(text),
                IntOrStr::Str(text.to_string()),
                "{text}"
            );
        }
        assert_eq!(IntOrStr::Int(3).to_string(), "3");
        assert_eq!(IntOrStr::Str("25%".to_string()).to_string(), "25%");
    }

    #[test]
    fn choice_names_round_trip() {
        assert_eq!(ServiceType::NodePort.as_str(), "NodePort");
        assert_eq!(Infrastructure::Gke.as_str(), "gke");
        assert_eq!(UseIngressTls::DefaultOff.to_string(), "default_off");
        assert_eq!(
            UnhealthyPodEvictionPolicy::AlwaysAllow.as_str(),
            "AlwaysAllow"
        );
        assert_eq!(LogFormat::Json.as_str(), "json");
        for (value, name) in UseIngressTls::ALL.iter().zip(UseIngressTls::NAMES) {
            assert_eq!(value.as_str(), *name);
        }
    }
}
