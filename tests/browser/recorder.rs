//! A recorder written in JavaScript: `jrtc.js` speaks the recorder's frames too (a token with
//! the `recorder` grant says `recorderReady`, takes a job, joins its room from a session of its
//! own, reports), and a Rust host sees the recording start and stop.

use jrtc::{AccessToken, CallEvent, Grants, RecordingEvent, RecordingOptions};
use serde_json::json;

use crate::support::{Browser, Member, in_namespace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_recorder_takes_a_job_joins_and_reports() {
    if !in_namespace("recorder::a_browser_recorder_takes_a_job_joins_and_reports") {
        return;
    }
    let server = jrtc::Server::builder()
        .development()
        .embedded_recorder(false)
        .start()
        .await
        .unwrap();
    let recorder_token = server
        .mint(&AccessToken::new("web-recorder").grants(Grants::none().recorder(true)))
        .unwrap();
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    let code = format!(
        "await T.connect('ready', {url}, {token});
         await T.calls.ready.outcome(T.calls.ready.recorderReady());",
        url = json!(server.url()),
        token = json!(recorder_token),
    );
    browser.eval(page, &code).await;

    let mut host = Member::join(&server, "host", "taped").await;
    let op = host
        .call
        .start_recording(RecordingOptions::default())
        .await
        .unwrap();
    host.call.outcome(op).await.unwrap();

    // The job reaches the browser, which joins the room as its recorder and says it records.
    let code = format!(
        "const job = (await T.until('ready', (e) => e.type === 'recording' && e.kind === 'job')).job;
         await T.connect('job', {url}, {token});
         const room = await T.calls.job.outcome(T.calls.job.recorderJoin(job.recording));
         T.calls.job.recordingReport(job.recording, {{ state: 'recording' }});
         T.recording = job.recording;
         return [job.room, room.room, room.participants.map((p) => [p.user_id, p.role])];",
        url = json!(server.url()),
        token = json!(recorder_token),
    );
    let got = browser.eval(page, &code).await;
    assert_eq!(
        got,
        json!([
            "taped",
            "taped",
            [["host", "host"], ["web-recorder", "recorder"]]
        ])
    );
    let recorder = host
        .until(|ev| match ev {
            CallEvent::Recording(RecordingEvent::Started { recorder, .. }) => {
                Some(recorder.to_string())
            }
            _ => None,
        })
        .await;
    assert_eq!(recorder, "web-recorder");

    // The host stops it: the recorder is asked to, reports its (here: no) files and leaves.
    let op = host.call.stop_recording().await.unwrap();
    host.call.outcome(op).await.unwrap();
    browser
        .eval(
            page,
            "const asked = (e) => e.type === 'recording' && e.kind === 'stop_asked';
             await T.poll(async () => ({ ok: T.find('job', asked).length + T.find('ready', asked).length > 0 }));
             const call = T.calls.job;
             call.recordingReport(T.recording, { state: 'stopped', reason: 'requested', files: [] });
             await call.outcome(call.leave());",
        )
        .await;
    let files = host
        .until(|ev| match ev {
            CallEvent::Recording(RecordingEvent::Stopped { files, .. }) => Some(files.len()),
            _ => None,
        })
        .await;
    assert_eq!(files, 0);
    browser.quit().await;
}
