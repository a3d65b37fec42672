//! One DNS query in, one decision out: answer from the cluster zone (names
//! under the cluster domain), forward upstream (everything else), or reply
//! with an error (unparseable queries).

use crate::records::{Answer, Qtype, Snapshot};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// TTL of cluster records, as CoreDNS's kubernetes plugin uses.
const TTL: u32 = 5;

/// What to do with a query.
#[derive(Debug)]
pub enum Decision {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: relay the query to an upstream resolver.
    Forward,
}

/// Decides on the raw query `buf`; `max` is the transport's size limit.
pub fn handle(buf: &[u8], snap: &Snapshot, domain: &str, max: usize) -> Decision {
    let Ok(query) = Message::from_vec(buf) else {
        // Echo the id when there is one, so the client stops waiting.
        let id = buf
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .unwrap_or(0);
        return reply(
            Message::error_msg(id, OpCode::Query, ResponseCode::FormErr),
            max,
        );
    };
    let Some(q) = query.queries().first() else {
        return reply(
            Message::error_msg(query.id(), query.op_code(), ResponseCode::FormErr),
            max,
        );
    };
    let qname = q.name().to_lowercase().to_ascii();
    let qname = qname.trim_end_matches('.');
    let Some(labels) = relative(qname, domain) else {
        return Decision::Forward;
    };
    let qtype = match q.query_type() {
        RecordType::A => Qtype::A,
        RecordType::AAAA => Qtype::Aaaa,
        RecordType::SRV => Qtype::Srv,
        RecordType::CNAME => Qtype::Cname,
        _ => Qtype::Other,
    };
    let answer = snap.lookup(&labels, qtype, domain);
    let mut resp = Message::new();
    resp.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_authoritative(true)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .add_query(q.clone());
    let name = q.name().clone();
    match answer {
        Answer::A(ips) => {
            resp.add_answers(
                ips.into_iter()
                    .map(|ip| Record::from_rdata(name.clone(), TTL, RData::A(A(ip)))),
            );
        }
        Answer::Cname(target) => match Name::from_ascii(format!("{target}.")) {
            Ok(t) => {
                resp.add_answer(Record::from_rdata(name, TTL, RData::CNAME(CNAME(t))));
            }
            Err(_) => {
                resp.set_response_code(ResponseCode::ServFail);
            }
        },
        Answer::Srv(recs, extra) => {
            for (port, target) in recs {
                if let Ok(t) = Name::from_ascii(format!("{target}.")) {
                    let srv = SRV::new(0, 100, port, t);
                    resp.add_answer(Record::from_rdata(name.clone(), TTL, RData::SRV(srv)));
                }
            }
            for (target, ip) in extra {
                if let Ok(t) = Name::from_ascii(format!("{target}.")) {
                    resp.add_additional(Record::from_rdata(t, TTL, RData::A(A(ip))));
                }
            }
        }
        Answer::NoData => {
            resp.add_name_server(soa(domain));
        }
        Answer::NxDomain => {
            resp.set_response_code(ResponseCode::NXDomain);
            resp.add_name_server(soa(domain));
        }
    }
    reply(resp, max)
}

/// The labels of `qname` before `.domain`, or None when it is outside.
fn relative<'a>(qname: &'a str, domain: &str) -> Option<Vec<&'a str>> {
    if qname == domain {
        return Some(Vec::new());
    }
    let head = qname.strip_suffix(domain)?.strip_suffix('.')?;
    Some(head.split('.').collect())
}

fn soa(domain: &str) -> Record {
    let zone = Name::from_ascii(format!("{domain}.")).unwrap_or_default();
    let mname = Name::from_ascii(format!("ns.dns.{domain}.")).unwrap_or_default();
    let rname = Name::from_ascii(format!("hostmaster.{domain}.")).unwrap_or_default();
    let soa = SOA::new(mname, rname, 1, 7200, 1800, 86400, TTL);
    Record::from_rdata(zone, TTL, RData::SOA(soa))
}

fn reply(msg: Message, max: usize) -> Decision {
    match msg.to_vec() {
        Ok(bytes) if bytes.len() <= max => Decision::Reply(bytes),
        _ => {
            let mut t = msg.truncate();
            t.set_truncated(true);
            Decision::Reply(t.to_vec().unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use serde_json::json;

    fn snapshot() -> Snapshot {
        let svcs: Vec<k8s_openapi::api::core::v1::Service> = serde_json::from_value(json!([
            {"metadata": {"name": "web", "namespace": "ns"},
             "spec": {"clusterIP": "10.43.0.5", "ports": [{"name": "http", "port": 80}]}},
            {"metadata": {"name": "db", "namespace": "ns"},
             "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
            {"metadata": {"name": "ext", "namespace": "ns"},
             "spec": {"type": "ExternalName", "externalName": "example.com"}}]))
        .unwrap();
        let slices: Vec<k8s_openapi::api::discovery::v1::EndpointSlice> = serde_json::from_value(json!([
            {"metadata": {"name": "db-1", "namespace": "ns", "labels": {"kubernetes.io/service-name": "db"}},
             "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
             "endpoints": [{"addresses": ["10.42.0.7"], "conditions": {"ready": true}},
                           {"addresses": ["10.42.0.8"], "hostname": "db-0"},
                           {"addresses": ["10.42.0.9"], "conditions": {"ready": false}}]}]))
        .unwrap();
        Snapshot::build(svcs.iter(), slices.iter())
    }

    fn ask(name: &str, ty: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(7)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        match handle(&m.to_vec().unwrap(), &snapshot(), "cluster.local", 512) {
            Decision::Reply(b) => Message::from_vec(&b).unwrap(),
            Decision::Forward => panic!("{name} forwarded"),
        }
    }

    fn rdata(m: &Message) -> Vec<String> {
        m.answers().iter().map(|r| r.data().to_string()).collect()
    }

    #[test]
    fn answers_cluster_names() {
        assert_eq!(
            rdata(&ask("web.ns.svc.cluster.local.", RecordType::A)),
            ["10.43.0.5"]
        );
        assert_eq!(
            rdata(&ask("WEB.ns.svc.cluster.local.", RecordType::A)),
            ["10.43.0.5"]
        );
        let aaaa = ask("web.ns.svc.cluster.local.", RecordType::AAAA);
        assert_eq!(
            (aaaa.response_code(), aaaa.answers().len()),
            (ResponseCode::NoError, 0)
        );
        assert_eq!(
            rdata(&ask("db.ns.svc.cluster.local.", RecordType::A)),
            ["10.42.0.7", "10.42.0.8"]
        );
        assert_eq!(
            rdata(&ask("db-0.db.ns.svc.cluster.local.", RecordType::A)),
            ["10.42.0.8"]
        );
        assert_eq!(
            rdata(&ask("ext.ns.svc.cluster.local.", RecordType::A)),
            ["example.com."]
        );
        assert_eq!(
            rdata(&ask("10-42-0-3.ns.pod.cluster.local.", RecordType::A)),
            ["10.42.0.3"]
        );
        let srv = ask("_http._tcp.web.ns.svc.cluster.local.", RecordType::SRV);
        assert_eq!(rdata(&srv), ["0 100 80 web.ns.svc.cluster.local."]);
        let srv = ask("_pg._tcp.db.ns.svc.cluster.local.", RecordType::SRV);
        assert_eq!(srv.answers().len(), 2);
        assert_eq!(srv.additionals().len(), 2);
        for name in [
            "nope.ns.svc.cluster.local.",
            "web.other.svc.cluster.local.",
            "a.b.c.d.e.f.cluster.local.",
        ] {
            assert_eq!(
                ask(name, RecordType::A).response_code(),
                ResponseCode::NXDomain,
                "{name}"
            );
        }
    }

    #[test]
    fn other_names_are_forwarded() {
        let mut m = Message::new();
        m.add_query(Query::query(
            Name::from_ascii("example.com.").unwrap(),
            RecordType::A,
        ));
        assert!(matches!(
            handle(&m.to_vec().unwrap(), &snapshot(), "cluster.local", 512),
            Decision::Forward
        ));
        let mut m = Message::new();
        m.add_query(Query::query(
            Name::from_ascii("notcluster.local.").unwrap(),
            RecordType::A,
        ));
        assert!(matches!(
            handle(&m.to_vec().unwrap(), &snapshot(), "cluster.local", 512),
            Decision::Forward
        ));
        assert!(matches!(
            handle(b"\x01\x02garbage", &snapshot(), "cluster.local", 512),
            Decision::Reply(_)
        ));
    }
}
