use super::*;
use serde_json::json;

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pocketpxe-machines-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn served() -> Vec<Served> {
    vec![Served {
        interface: "br0".to_owned(),
        server: "192.168.242.1/24".parse().unwrap(),
        pool: Some(Pool {
            start: Ipv4Addr::new(192, 168, 242, 100),
            end: Ipv4Addr::new(192, 168, 242, 199),
        }),
    }]
}

#[test]
fn bad_fields_are_named() {
    let cases = [
        (json!({"policy": "sometimes"}), "policy"),
        (json!({"hostname": "bad name"}), "hostname"),
        (json!({"boot": {"efi-x86": "a.efi"}}), "boot.efi-x86"),
        (json!({"boot": {"bios": 3}}), "boot.bios"),
        (json!({"address": "300.1.1.1"}), "address"),
        (json!({"kernel": "k", "boot": {"bios": "p"}}), "kernel"),
        (json!({"cmdline": "quiet"}), "cmdline"),
        (json!({"kernel": "a b"}), "kernel"),
        (json!({"kernel": "k", "initrd": ["ok", 1]}), "initrd[1]"),
        (json!({"colour": "red"}), "colour"),
        (json!({"mac": "52:54:00:00:00:01"}), "mac"),
        (json!([1]), "body"),
    ];
    for (body, field) in cases {
        let e = MachineSpec::from_json(Some(MAC), &body).unwrap_err();
        assert_eq!(e.field, field, "{body}: {e}");
    }
    let spec = MachineSpec::from_json(
        Some(MAC),
        &json!({"hostname": "node-1", "kernel": "vmlinuz", "initrd": "initrd.gz", "policy": "once"}),
    )
    .unwrap();
    assert_eq!(spec.initrd, ["initrd.gz"]);
    assert_eq!(spec.policy, Policy::Once);
    // Round trip through JSON.
    assert_eq!(MachineSpec::from_json(None, &spec.to_json()).unwrap(), spec);
    // A patch clears with null and keeps the rest.
    let p = spec
        .patched(&json!({"hostname": null, "cmdline": "quiet"}))
        .unwrap();
    assert_eq!(
        (p.hostname, p.cmdline.as_deref(), p.policy),
        (None, Some("quiet"), Policy::Once)
    );
}

#[test]
fn addresses_lie_in_a_subnet_outside_its_pool() {
    let mut spec = MachineSpec::new(MAC);
    for (ip, ok) in [
        ("192.168.242.20", true),
        ("192.168.242.150", false),
        ("192.168.242.1", false),
        ("10.0.0.1", false),
    ] {
        spec.address = Some(ip.parse().unwrap());
        assert_eq!(spec.check_address(&served()).is_ok(), ok, "{ip}");
    }
}

#[test]
fn directives_follow_policy_profile_and_install_mark() {
    let dir = tmp("directive");
    let mut once = MachineSpec::new(MAC);
    once.policy = Policy::Once;
    once.kernel = Some("vmlinuz".to_owned());
    once.initrd = vec!["initrd.gz".to_owned()];
    once.cmdline = Some("console=ttyS0 done=${mac}".to_owned());
    let mut never = MachineSpec::new([2, 0, 0, 0, 0, 2]);
    never.policy = Policy::Never;
    let mut files = MachineSpec::new([2, 0, 0, 0, 0, 3]);
    files.boot.insert("bios".to_owned(), "special.0".to_owned());
    files.hostname = Some("files".to_owned());
    let m = Machines::open(
        vec![once.clone(), never.clone(), files],
        Some(dir.join("state.json")),
        served(),
    )
    .unwrap();

    let rules = |mac| {
        m.directive(mac, Some(80)).unwrap().with(|d| match d {
            Directive::Machine(machine) => Some(machine.boot.map(|r| {
                r.iter()
                    .map(|r| (r.class, r.file.to_owned()))
                    .collect::<Vec<_>>()
            })),
            _ => None,
        })
    };
    let script_path = "pocketpxe/machines/52-54-00-12-34-56/boot.ipxe".to_owned();
    assert_eq!(
        rules(MAC),
        Some(Some(vec![
            (ClientClass::Bios, "ipxe/undionly.kpxe".to_owned()),
            (ClientClass::EfiX64, "ipxe/snponly.efi".to_owned()),
            (ClientClass::Ipxe, script_path.clone()),
        ]))
    );
    let script = m.script(MAC).unwrap();
    assert_eq!(
        script,
        "#!ipxe\ninitrd --name initrd0 /initrd.gz\nkernel /vmlinuz initrd=initrd0 console=ttyS0 done=${mac}\nboot\n"
    );
    assert!(m.directive([2, 0, 0, 0, 0, 2], Some(80)).unwrap().ignores());
    assert_eq!(
        rules([2, 0, 0, 0, 0, 3]),
        Some(Some(vec![(ClientClass::Bios, "special.0".to_owned())]))
    );
    assert!(m.directive([2, 0, 0, 0, 0, 9], Some(80)).is_none());

    // Installed: iPXE gets the exit script, everyone else no boot file; without HTTP nothing.
    let mut events = m.subscribe();
    m.mark_installed(MAC).unwrap();
    let event: Value = serde_json::from_str(&events.try_recv().unwrap()).unwrap();
    assert_eq!(
        (event["type"].as_str(), event["event"].as_str()),
        (Some("machine"), Some("installed"))
    );
    assert_eq!(
        rules(MAC),
        Some(Some(vec![(ClientClass::Ipxe, script_path)]))
    );
    assert!(m.script(MAC).unwrap().ends_with("exit\n"));
    assert!(m.directive(MAC, None).unwrap().with(|d| matches!(
        d,
        Directive::Machine(Machine {
            boot: Some(&[]),
            ..
        })
    )));

    // The mark survives a restart (the state file), and a reload of the config records.
    let again = Machines::open(vec![once], Some(dir.join("state.json")), served()).unwrap();
    assert!(again.get(MAC).unwrap().installed.is_some());
    again.set_config(Vec::new());
    assert!(again.get(MAC).is_none(), "the record was the file's");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn api_changes_persist_and_a_failed_write_changes_nothing() {
    let dir = tmp("persist");
    let path = dir.join("state.json");
    let m = Machines::open(Vec::new(), Some(path.clone()), served()).unwrap();
    let mut spec = MachineSpec::new(MAC);
    spec.address = Some(Ipv4Addr::new(192, 168, 242, 20));
    assert!(m.put(spec.clone()).unwrap());
    assert!(!m.put(spec.clone()).unwrap());
    let view = m
        .patch(MAC, &json!({"hostname": "n1", "installed": true}))
        .unwrap();
    assert_eq!(view.spec.hostname.as_deref(), Some("n1"));
    assert!(view.installed.is_some());
    // A pool address is refused, nothing written.
    let e = m
        .patch(MAC, &json!({"address": "192.168.242.150"}))
        .unwrap_err();
    assert!(
        matches!(&e, ChangeError::Field(f) if f.field == "address"),
        "{e}"
    );
    let reopened = Machines::open(Vec::new(), Some(path.clone()), served()).unwrap();
    assert_eq!(reopened.list(), m.list());
    assert_eq!(reopened.get(MAC).unwrap().spec.address, spec.address);
    // The directory becomes unwritable (a file in its place): the change fails whole.
    let blocked = Machines::open(
        Vec::new(),
        Some(dir.join("missing-dir/state.json")),
        served(),
    )
    .unwrap();
    assert!(matches!(
        blocked.put(spec.clone()),
        Err(ChangeError::State(_))
    ));
    assert!(blocked.list().is_empty());
    // Delete, then 404s.
    m.delete(MAC).unwrap();
    assert!(matches!(m.delete(MAC), Err(ChangeError::NotFound(_))));
    assert!(matches!(
        m.mark_installed(MAC),
        Err(ChangeError::NotFound(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_it() {
    let dir = tmp("corrupt");
    let path = dir.join("state.json");
    for text in [
        "{",
        "{\"version\": 1, \"machines\": [{\"mac\": \"zz\"}], \"installed\": {}}",
        "{\"version\": 2, \"machines\": [], \"installed\": {}}",
        "{\"version\": 1, \"machines\": [], \"installed\": {\"52:54:00:12:34:56\": \"x\"}}",
    ] {
        std::fs::write(&path, text).unwrap();
        let e = Machines::open(Vec::new(), Some(path.clone()), served())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("corrupt"),
            "{e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn http_paths_name_the_machine() {
    assert_eq!(
        parse_http_path("/pocketpxe/machines/52:54:00:12:34:56/boot.ipxe"),
        Some((MAC, "boot.ipxe"))
    );
    assert_eq!(
        parse_http_path("pocketpxe/machines/52-54-00-12-34-56/installed"),
        Some((MAC, "installed"))
    );
    assert_eq!(
        parse_http_path("/pocketpxe/machines/52%3A54%3A00%3A12%3A34%3A56/boot.ipxe"),
        Some((MAC, "boot.ipxe"))
    );
    assert_eq!(parse_http_path("/pocketpxe/machines/nope/boot.ipxe"), None);
    assert_eq!(parse_http_path("/boot.ipxe"), None);
}
