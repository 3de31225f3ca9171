//! A caller invites two users to a call; one accepts, one declines. Every event each user
//! receives is printed as it arrives. Exits by itself.
//!
//! Run with `cargo run --example invite`.

use futures::StreamExt;
use jrtc::{
    AccessToken, Call, CallEvent, EventStream, Grants, InviteEvent, InviteOptions, Outcome,
    ParticipantEvent, Rejection, Server, ServerHandle,
};

/// Prints every event of one user until its stream ends.
fn print_events(name: &'static str, mut events: EventStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            println!("[{name:>5}] {event}");
        }
    })
}

/// Waits for the first invitation this user receives.
async fn first_invitation(call: &Call) -> jrtc::Invitation {
    let mut invites = call.events().invites();
    if let Some(invitation) = call.invitations().into_iter().next() {
        return invitation;
    }
    while let Some(Ok(event)) = invites.next().await {
        if let InviteEvent::Received(invitation) = event {
            return invitation;
        }
    }
    panic!("no invitation came")
}

/// A token for a demo user with every grant, signed by the development server.
fn token(server: &ServerHandle, user: &str, name: &str) -> Result<String, jrtc::TokenError> {
    server.mint(&AccessToken::new(user).name(name).grants(Grants::host()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder().development().start().await?;
    let alice = Call::connect(&server.url(), token(&server, "alice", "Alice")?).await?;
    let bob = Call::connect(&server.url(), token(&server, "bob", "Bob")?).await?;
    let carol = Call::connect(&server.url(), token(&server, "carol", "Carol")?).await?;
    let printers = [
        print_events("alice", alice.events()),
        print_events("bob", bob.events()),
        print_events("carol", carol.events()),
    ];
    let (bob_invite, carol_invite) = (
        tokio::spawn({
            let bob = bob.clone();
            async move { first_invitation(&bob).await }
        }),
        tokio::spawn({
            let carol = carol.clone();
            async move { first_invitation(&carol).await }
        }),
    );

    // Alice watches for both answers and for Bob arriving, to know when everything has reached her.
    let mut alice_events = alice.events();

    // Alice is in no room: inviting starts a call, with her in a new room.
    let options = InviteOptions::default().video(true).extra("design review");
    let op = alice.invite(&["bob", "carol"], options).await?;
    let Outcome::Invited(report) = alice.outcome(op).await? else {
        unreachable!("an invite's outcome is its report")
    };
    println!(
        "alice's call is room `{}`",
        report.room.expect("someone was invited")
    );

    // Bob accepts (and joins); Carol declines.
    let invitation = bob_invite.await?;
    let op = bob.accept_invite(invitation.id, true).await?;
    bob.outcome(op).await?;
    let invitation = carol_invite.await?;
    let op = carol
        .reject_invite(invitation.id, Rejection::Declined)
        .await?;
    carol.outcome(op).await?;

    // Bob's and Carol's sides came with their outcomes; once Alice has heard both answers and
    // seen Bob join, nothing is left in flight. Closing ends each stream after the events
    // already received, so the printers print everything.
    let (mut accepted, mut rejected, mut arrived) = (false, false, false);
    while !(accepted && rejected && arrived) {
        match alice_events.next().await {
            Some(CallEvent::Invite(InviteEvent::Accepted { .. })) => accepted = true,
            Some(CallEvent::Invite(InviteEvent::Rejected { .. })) => rejected = true,
            Some(CallEvent::Participant(ParticipantEvent::Joined { .. })) => arrived = true,
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
