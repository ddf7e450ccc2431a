//! Keys to actions. Bindings come from the config's `[keys]` table; the explorer's help overlay
//! is generated from the same table, so what it says is what the keys do.
use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// A key with its modifiers, as bindings name it: `j`, `ctrl-c`, `pagedown`, `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyCombo {
    pub code: KeyCode,
    /// Only CONTROL and ALT count; SHIFT is part of the character.
    pub modifiers: KeyModifiers,
}

const NAMED: [(&str, KeyCode); 14] = [
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("space", KeyCode::Char(' ')),
    ("backspace", KeyCode::Backspace),
];

impl KeyCombo {
    /// Parses a binding; the error says what was expected.
    pub fn parse(text: &str) -> Result<KeyCombo, String> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            if let Some(tail) = rest.strip_prefix("ctrl-").filter(|t| !t.is_empty()) {
                modifiers |= KeyModifiers::CONTROL;
                rest = tail;
            } else if let Some(tail) = rest.strip_prefix("alt-").filter(|t| !t.is_empty()) {
                modifiers |= KeyModifiers::ALT;
                rest = tail;
            } else {
                break;
            }
        }
        let code = Self::code(rest).ok_or_else(|| {
            format!(
                "'{text}' is not a key: expected one character, or one of {}, or f1…f12, \
                 optionally after ctrl- or alt-",
                NAMED.map(|(n, _)| n).join(", ")
            )
        })?;
        Ok(KeyCombo { code, modifiers })
    }

    fn code(name: &str) -> Option<KeyCode> {
        let mut chars = name.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return Some(KeyCode::Char(c));
        }
        if let Some((_, code)) = NAMED.iter().find(|(n, _)| *n == name) {
            return Some(*code);
        }
        name.strip_prefix('f')
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| (1..=12).contains(n))
            .map(KeyCode::F)
    }

    fn from_event(event: &KeyEvent) -> KeyCombo {
        KeyCombo {
            code: event.code,
            modifiers: event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT),
        }
    }
}

impl fmt::Display for KeyCombo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            code => match NAMED.iter().find(|(_, c)| *c == code) {
                Some((name, _)) => f.write_str(name),
                None => write!(f, "{code:?}"),
            },
        }
    }
}

/// Every action's keys, in help order.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMap {
    bindings: Vec<(Action, Vec<KeyCombo>)>,
}

/// A `[keys]` entry that cannot be used; `key` is the config key, e.g. `keys.next_slice`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct KeyMapError {
    pub key: String,
    pub message: String,
    /// For a key bound twice: the other action it is bound to.
    pub clashes_with: Option<String>,
}

impl KeyMap {
    /// No bindings (a placeholder before the config's `[keys]` are read).
    pub fn empty() -> KeyMap {
        KeyMap {
            bindings: Vec::new(),
        }
    }

    /// Builds the map from `[keys]`: every action must be bound, no key may do two things.
    pub fn from_table(table: &BTreeMap<String, Vec<String>>) -> Result<KeyMap, KeyMapError> {
        let error = |name: &str, message: String| KeyMapError {
            key: format!("keys.{name}"),
            message,
            clashes_with: None,
        };
        for name in table.keys() {
            if Action::from_name(name).is_none() {
                let known: Vec<&str> = Action::ALL.iter().map(|(_, n, _)| *n).collect();
                return Err(error(
                    name,
                    format!("no such action; expected one of {}", known.join(", ")),
                ));
            }
        }
        let mut bindings = Vec::new();
        let mut owner: BTreeMap<String, &str> = BTreeMap::new();
        for (action, name, _) in Action::ALL {
            let texts = table
                .get(name)
                .ok_or_else(|| error(name, "missing: every action needs a key".into()))?;
            let mut combos = Vec::new();
            for text in texts {
                let combo = KeyCombo::parse(text).map_err(|m| error(name, m))?;
                if let Some(other) = owner.insert(combo.to_string(), name) {
                    return Err(KeyMapError {
                        clashes_with: Some(other.to_string()),
                        ..error(name, format!("'{text}' is already bound to {other}"))
                    });
                }
                combos.push(combo);
            }
            bindings.push((action, combos));
        }
        Ok(KeyMap { bindings })
    }

    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        let pressed = KeyCombo::from_event(event);
        self.bindings
            .iter()
            .find(|(_, combos)| combos.contains(&pressed))
            .map(|(action, _)| *action)
    }

    /// (keys, description) for every action, in help order.
    pub fn help_lines(&self) -> Vec<(String, &'static str)> {
        self.bindings
            .iter()
            .map(|(action, combos)| {
                let keys: Vec<String> = combos.iter().map(ToString::to_string).collect();
                (keys.join(" "), action.description())
            })
            .collect()
    }

    /// The first key of `action`, for hints on screen.
    pub fn key_of(&self, action: Action) -> String {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .and_then(|(_, combos)| combos.first())
            .map_or_else(|| "?".into(), ToString::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> BTreeMap<String, Vec<String>> {
        crate::config::Config::defaults().keys
    }

    #[test]
    fn parses_characters_named_keys_and_modifiers() {
        assert_eq!(KeyCombo::parse("j").map(|k| k.code), Ok(KeyCode::Char('j')));
        let ctrl_c = KeyCombo::parse("ctrl-c").expect("ctrl-c");
        assert_eq!(ctrl_c.modifiers, KeyModifiers::CONTROL);
        assert_eq!(KeyCombo::parse("f5").map(|k| k.code), Ok(KeyCode::F(5)));
        assert_eq!(
            KeyCombo::parse("pagedown").map(|k| k.code),
            Ok(KeyCode::PageDown)
        );
        assert_eq!(KeyCombo::parse("-").map(|k| k.code), Ok(KeyCode::Char('-')));
        assert!(KeyCombo::parse("f13").is_err());
        assert!(KeyCombo::parse("jj").is_err());
        assert!(KeyCombo::parse("ctrl-").is_err());
    }

    #[test]
    fn default_keys_map_events_to_actions() {
        let map = KeyMap::from_table(&defaults()).expect("defaults are valid");
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert_eq!(
            map.action(&key(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::NextPatient)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('c'), KeyModifiers::NONE)),
            Some(Action::NextColormap)
        );
        // Shift is part of the character: '?' arrives with SHIFT on most terminals.
        assert_eq!(
            map.action(&key(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::Help)
        );
        assert_eq!(map.help_lines().len(), Action::ALL.len());
    }

    #[test]
    fn conflicts_unknown_actions_and_bad_keys_name_the_key() {
        let mut table = defaults();
        table.insert("next_slice".into(), vec!["j".into()]);
        let err = KeyMap::from_table(&table).expect_err("j is bound twice");
        assert!(err.key.starts_with("keys."), "{err}");
        assert!(err.message.contains("already bound"), "{err}");

        let mut table = defaults();
        table.insert("fly".into(), vec!["x".into()]);
        assert_eq!(
            KeyMap::from_table(&table).expect_err("unknown").key,
            "keys.fly"
        );

        let mut table = defaults();
        table.insert("quit".into(), vec!["hyper-q".into()]);
        let err = KeyMap::from_table(&table).expect_err("bad key");
        assert_eq!(err.key, "keys.quit");
    }
}
