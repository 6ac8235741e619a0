use super::*;
use app::server::control_plane::contract::{CommandInstance, RequestedBy, TenantRef};

pub fn command(op: &str, kind: OperationType, instance: &str) -> OperationCommand {
    OperationCommand {
        operation_id: op.into(),
        kind,
        instance: CommandInstance {
            id: instance.into(),
            external_id: None,
            tenant: TenantRef {
                id: "acme".into(),
                name: "Acme".into(),
            },
            name: "web".into(),
            plan: "pro".into(),
            environment: "production".into(),
            region: "eu-west".into(),
            resources: Resources {
                replicas: 2,
                cpu_millicores: 500,
                memory_mib: 1024,
                storage_gib: 10,
            },
            parameters: BTreeMap::from([("tls".to_owned(), ParamValue::Bool(true))]),
        },
        requested_by: RequestedBy::Provider,
        requested_at: "2026-01-01T00:00:00Z".into(),
        deadline: "2026-01-01T01:00:00Z".into(),
    }
}

const NOW: i64 = 1_700_000_000_000;
const SETTINGS: Settings = Settings {
    delay_ms: 0,
    failure_rate: 0.0,
};

fn send(s: &mut State, cmd: &OperationCommand) -> Decision {
    s.log(cmd, Some(&cmd.operation_id), NOW);
    s.command(cmd, Some(&cmd.operation_id), NOW, SETTINGS)
}

#[test]
fn a_create_runs_once_and_a_resend_gets_the_same_answer() {
    let mut s = State::default();
    let create = command("op-1", OperationType::Create, "i-1");
    assert_eq!(send(&mut s, &create), Decision::Accepted);
    let (seq, first) = s.complete("op-1").unwrap();
    assert_eq!(seq, 1);
    assert_eq!(first.state, ReportedState::Succeeded);
    let observed = first.instance.clone().unwrap();
    assert_eq!(observed.status, Some(Status::Running));
    assert_eq!(observed.external_id.as_deref(), Some("cp-1"));
    assert_eq!(
        observed.endpoints.unwrap()[0].url,
        "https://web.eu-west.example.test"
    );

    assert_eq!(send(&mut s, &create), Decision::Known(first.clone()));
    // Completing again changes nothing either.
    assert_eq!(s.complete("op-1").unwrap().1, first);
    let log = s.command_log();
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|c| c.executions == 1 && c.operation_id == "op-1"));
    assert_eq!(s.executed, 1);
}

#[test]
fn a_resend_while_in_progress_is_known_and_not_run_again() {
    let mut s = State::default();
    let create = command("op-1", OperationType::Create, "i-1");
    assert_eq!(send(&mut s, &create), Decision::Accepted);
    let (seq, progress) = s.progress("op-1", 1, 1).unwrap();
    assert_eq!(seq, 1);
    assert_eq!(progress.message.as_deref(), Some("Provisioning web"));
    assert_eq!(progress.percent, Some(50));
    match send(&mut s, &create) {
        Decision::Known(r) => assert_eq!(r.state, ReportedState::InProgress),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.operations["op-1"].executions, 1);
    assert_eq!(s.complete("op-1").unwrap().0, 2);
}

#[test]
fn commands_are_checked_against_the_instances_kept() {
    let mut s = State::default();
    // An instance it never saw is taken over from the command, and the command runs.
    let stop = command("op-1", OperationType::Stop, "i-8");
    assert_eq!(send(&mut s, &stop), Decision::Accepted);
    assert_eq!(s.instance("i-8").unwrap().status, Status::Stopping);
    s.complete("op-1").unwrap();
    assert_eq!(s.instance("i-8").unwrap().status, Status::Stopped);
    let create = command("op-2", OperationType::Create, "i-9");
    assert_eq!(
        s.command(&create, Some("other"), NOW, SETTINGS),
        Decision::Refused(
            422,
            "the Idempotency-Key header must equal the operation_id".into()
        )
    );
    assert_eq!(
        s.command(&create, None, NOW, SETTINGS),
        s.command(&create, Some("x"), NOW, SETTINGS)
    );
    assert_eq!(send(&mut s, &create), Decision::Accepted);
    // Busy until the create completes.
    assert!(matches!(
        send(&mut s, &command("op-3", OperationType::Stop, "i-9")),
        Decision::Refused(409, _)
    ));
    s.complete("op-2").unwrap();
    assert!(matches!(
        send(&mut s, &command("op-4", OperationType::Create, "i-9")),
        Decision::Refused(409, _)
    ));

    let transitions = [
        (OperationType::Stop, Status::Stopped),
        (OperationType::Start, Status::Running),
        (OperationType::Restart, Status::Running),
        (OperationType::Scale, Status::Running),
        (OperationType::UpdateConfig, Status::Running),
        (OperationType::Delete, Status::Deleted),
    ];
    for (n, (kind, after)) in transitions.into_iter().enumerate() {
        let id = format!("op-t{n}");
        let mut cmd = command(&id, kind, "i-9");
        cmd.instance.resources.replicas = 5;
        assert_eq!(send(&mut s, &cmd), Decision::Accepted, "{kind:?}");
        assert_ne!(
            s.instance("i-9").unwrap().status,
            Status::Running,
            "{kind:?}: transitional"
        );
        let (_, report) = s.complete(&id).unwrap();
        assert_eq!(report.instance.unwrap().status, Some(after), "{kind:?}");
    }
    assert_eq!(s.instance("cp-2").unwrap().resources.unwrap().replicas, 5);
    assert_eq!(
        send(&mut s, &command("op-5", OperationType::Start, "i-9")),
        Decision::Refused(422, "instance i-9 is deleted".into())
    );
}

#[test]
fn the_failure_rate_fails_an_exact_even_share() {
    let count = |rate: f64, n: u64| (1..=n).filter(|&k| fails(k, rate)).count();
    assert_eq!(count(0.0, 100), 0);
    assert_eq!(count(1.0, 100), 100);
    assert_eq!(count(0.3, 100), 30);
    assert_eq!(count(0.25, 8), 2);
    let picked: Vec<u64> = (1..=6).filter(|&k| fails(k, 0.5)).collect();
    assert_eq!(picked, vec![2, 4, 6]);
    // Never two in a row below one half.
    assert!((1..100).all(|k| !(fails(k, 0.3) && fails(k + 1, 0.3))));
}

#[test]
fn a_failed_operation_says_why_and_settles_as_the_lifecycle_says() {
    let mut s = State::default();
    let settings = Settings {
        delay_ms: 10,
        failure_rate: 1.0,
    };
    let create = command("op-1", OperationType::Create, "i-1");
    assert_eq!(
        s.command(&create, Some("op-1"), NOW, settings),
        Decision::Accepted
    );
    assert_eq!(s.operations["op-1"].due_at_ms, NOW + 10);
    let (_, report) = s.complete("op-1").unwrap();
    assert_eq!(report.state, ReportedState::Failed);
    assert_eq!(report.message.as_deref(), Some(SIMULATED_FAILURE));
    assert_eq!(report.instance.unwrap().status, Some(Status::Failed));
}

#[test]
fn the_instance_list_pages_in_creation_order() {
    let mut s = State::default();
    for n in 1..=5 {
        let op = format!("op-{n}");
        send(
            &mut s,
            &command(&op, OperationType::Create, &format!("i-{n}")),
        );
        s.complete(&op);
    }
    let first = s.page(None, Some(2)).unwrap();
    let ids: Vec<_> = first
        .instances
        .iter()
        .map(|i| i.id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["i-1", "i-2"]);
    assert_eq!(
        first.instances[0].observed.external_id.as_deref(),
        Some("cp-1")
    );
    let second = s.page(first.next_cursor.as_deref(), Some(2)).unwrap();
    assert_eq!(second.instances[0].name, "web");
    let third = s.page(second.next_cursor.as_deref(), Some(2)).unwrap();
    assert_eq!(third.instances.len(), 1);
    assert_eq!(third.next_cursor, None);
    assert_eq!(s.page(None, None).unwrap().instances.len(), 5);
    assert!(s.page(Some("nope"), None).is_err());
}

#[test]
fn a_console_change_is_reported_with_a_growing_seq() {
    let mut s = State::default();
    send(&mut s, &command("op-1", OperationType::Create, "i-1"));
    s.complete("op-1");
    let change = ConsoleChange {
        status: Some(Status::Stopped),
        message: Some("stopped by the provider".into()),
        ..Default::default()
    };
    let (id, ev) = s.console_change("cp-1", &change, "now".into()).unwrap();
    assert_eq!(id, "i-1");
    assert_eq!(ev.seq, Some(1));
    assert_eq!(ev.instance.status, Some(Status::Stopped));
    let (_, again) = s
        .console_change("i-1", &ConsoleChange::default(), "later".into())
        .unwrap();
    assert_eq!(again.seq, Some(2));
    assert!(s.console_change("i-404", &change, "now".into()).is_none());
}
