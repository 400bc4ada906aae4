//! The frame every page shares: head, navigation, the logged-in role.

use super::Session;
use maud::{html, Markup, DOCTYPE};

/// Which navigation entry is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Events,
    Policies,
    Assignments,
    Instrument,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · ldguard" }
            link rel="stylesheet" href="/console/static/console.css";
            script src="/console/static/console.js" defer {}
        }
    }
}

/// A page for a logged-in user.
pub fn layout(title: &str, session: &Session, current: Nav, content: Markup) -> Markup {
    let entries = [
        (Nav::Dashboard, "/", "Dashboard"),
        (Nav::Events, "/events", "Events"),
        (Nav::Policies, "/policies", "Policies"),
        (Nav::Assignments, "/assignments", "Assignments"),
        (Nav::Instrument, "/instrument", "Instrumentation"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a .skip href="#main" { "Skip to content" }
                header .top {
                    span .brand { "ldguard" }
                    nav aria-label="Console" {
                        ul {
                            @for (nav, href, label) in entries {
                                li {
                                    @if nav == current {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form method="post" action="/logout" .logout {
                        span .role { "Logged in as " (session.caller.role.as_str()) }
                        button type="submit" { "Log out" }
                    }
                }
                main #main { (content) }
            }
        }
    }
}

/// A page without navigation (login, errors).
pub fn bare(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main #main .narrow { (content) } }
        }
    }
}
