use super::*;

#[test]
fn reads_json_and_yaml_file_sd() {
    let dir = std::env::temp_dir().join(format!("medic-filesd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let j = dir.join("t.json");
    std::fs::write(
        &j,
        r#"[{"targets":["127.0.0.1:1","127.0.0.1:2"],"labels":{"env":"prod"}}]"#,
    )
    .unwrap();
    let t = read_file_sd(&j).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].labels.get("env").map(String::as_str), Some("prod"));
    let y = dir.join("t.yaml");
    std::fs::write(&y, "- targets: ['a:1']\n").unwrap();
    assert_eq!(read_file_sd(&y).unwrap()[0].address, "a:1");
    std::fs::write(&y, "- targetz: ['a:1']\n").unwrap();
    assert!(read_file_sd(&y).unwrap_err().contains("targetz"));
    let _ = std::fs::remove_dir_all(&dir);
}
