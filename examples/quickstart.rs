//! Three users in one room on an embedded server: join, see each other, change a property, send
//! group and one-to-one messages, kick, leave. Every event each user receives is printed as it
//! arrives. Exits by itself.
//!
//! Run with `cargo run --example quickstart`.

use futures::StreamExt;
use jrtc::{
    AccessToken, Call, CallEvent, EventStream, Grants, JoinOptions, Outcome, ParticipantEvent,
    PropertyUpdate, Server, ServerHandle,
};

/// Prints every event of one user until its stream ends.
fn print_events(name: &'static str, mut events: EventStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            println!("[{name:>5}] {event}");
        }
    })
}

/// A token for a demo user with every grant, signed by the development server.
fn token(server: &ServerHandle, user: &str, name: &str) -> Result<String, jrtc::TokenError> {
    server.mint(&AccessToken::new(user).name(name).grants(Grants::host()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder().development().start().await?;
    println!("server at {}", server.url());

    let alice = Call::connect(&server.url(), token(&server, "alice", "Alice")?).await?;
    let bob = Call::connect(&server.url(), token(&server, "bob", "Bob")?).await?;
    let carol = Call::connect(&server.url(), token(&server, "carol", "Carol")?).await?;
    let printers = [
        print_events("alice", alice.events()),
        print_events("bob", bob.events()),
        print_events("carol", carol.events()),
    ];

    // Alice opens the room and is its host; the others join after her.
    let op = alice
        .join("standup", JoinOptions::default().audio(true))
        .await?;
    alice.outcome(op).await?;
    for user in [&bob, &carol] {
        let op = user
            .join("standup", JoinOptions::default().video(true))
            .await?;
        let Outcome::Joined(room) = user.outcome(op).await? else {
            unreachable!("a join's outcome is a snapshot")
        };
        assert!(room.participant("alice").is_some());
    }

    // The host sets a call property; everyone sees it.
    let mut update = PropertyUpdate::default();
    update
        .custom
        .insert("topic".into(), Some("quarterly numbers".into()));
    let op = alice.set_properties(update).await?;
    alice.outcome(op).await?;

    // A group message and a one-to-one message.
    let op = bob.send_message(None, "text/plain", "morning, all").await?;
    bob.outcome(op).await?;
    let op = carol
        .send_message(Some("alice"), "text/plain", "can I share my screen?")
        .await?;
    carol.outcome(op).await?;

    // The host removes Bob; then Carol leaves on her own. Alice watches the roster and Bob his
    // own stream, to know when each has heard of it.
    let mut alice_roster = alice.events().participants();
    let mut bob_events = bob.events();
    let op = alice.kick("bob").await?;
    alice.outcome(op).await?;
    let op = carol.leave().await?;
    carol.outcome(op).await?;

    // Carol's departure came with her outcome; once Bob has heard he was removed and Alice has
    // heard of both, nothing is left in flight. Closing ends each stream after the events
    // already received, so the printers print everything.
    while let Some(event) = bob_events.next().await {
        if matches!(event, CallEvent::Left { .. }) {
            break;
        }
    }
    let mut departures = 0;
    while departures < 2 {
        match alice_roster.next().await {
            Some(Ok(ParticipantEvent::Left { .. })) => departures += 1,
            Some(_) => {}
            None => break,
        }
    }
    for user in [&alice, &bob, &carol] {
        user.close().await;
    }
    for printer in printers {
        printer.await?;
    }
    server.shutdown().await;
    println!("done");
    Ok(())
}
