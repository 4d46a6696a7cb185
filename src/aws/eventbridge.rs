//! EventBridge adapter: PutEvents in batches of 10, per-entry results kept.

use super::classify;
use crate::ports::{EventPublisher, OutboundEvent, PortResult};
use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use futures_util::future::join_all;

/// PutEvents takes at most 10 entries a call.
const BATCH: usize = 10;

pub struct EventBus {
    client: Client,
    bus_name: String,
}

impl EventBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }
}

#[async_trait]
impl EventPublisher for EventBus {
    #[tracing::instrument(skip(self, events), fields(count = events.len(), bus = %self.bus_name))]
    /// Batches of 10 (PutEvents' limit), sent together; one bool per event, in order.
    async fn publish(&self, events: &[OutboundEvent]) -> PortResult<Vec<bool>> {
        let batches = join_all(events.chunks(BATCH).map(|chunk| async move {
            let entries: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(e.detail.to_string())
                        .set_resources(Some(e.resources.clone()))
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify("events:PutEvents", e))?;
            let results = out.entries();
            // An entry with an error code (or a missing result) was not accepted.
            PortResult::Ok(
                (0..chunk.len())
                    .map(|i| {
                        results
                            .get(i)
                            .is_some_and(|r| r.error_code().is_none() && r.event_id().is_some())
                    })
                    .collect::<Vec<bool>>(),
            )
        }))
        .await;
        // A batch that failed (after the SDK's retries) is that batch's events not accepted,
        // not the whole call's: the caller then records the batches that were, instead of
        // publishing every one of them again. Only when every batch failed is it an error.
        if batches.iter().all(Result::is_err) {
            if let Some(Err(e)) = batches.into_iter().next() {
                return Err(e);
            }
            return Ok(Vec::new());
        }
        let mut accepted = Vec::with_capacity(events.len());
        for (batch, chunk) in batches.into_iter().zip(events.chunks(BATCH)) {
            match batch {
                Ok(results) => accepted.extend(results),
                Err(e) => {
                    tracing::warn!(error.message = %e.reason(), count = chunk.len(), "a PutEvents batch failed; its events count as not accepted");
                    accepted.extend(std::iter::repeat_n(false, chunk.len()));
                }
            }
        }
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use serde_json::json;

    fn event(i: usize) -> OutboundEvent {
        OutboundEvent {
            source: "ddb-export-remediator".into(),
            detail_type: "DynamoDB Export Failed".into(),
            detail: json!({"exportArn": format!("arn:{i}")}),
            resources: vec![],
        }
    }

    #[tokio::test]
    async fn twelve_events_go_in_two_calls_and_a_failed_entry_is_reported() {
        let first = mock!(Client::put_events)
            .match_requests(|r| {
                r.entries().len() == 10 && r.entries()[0].event_bus_name() == Some("ops")
            })
            .then_output(|| {
                let mut out = PutEventsOutput::builder().failed_entry_count(1);
                for i in 0..10 {
                    out = out.entries(if i == 3 {
                        PutEventsResultEntry::builder()
                            .error_code("InternalFailure")
                            .build()
                    } else {
                        PutEventsResultEntry::builder()
                            .event_id(format!("id-{i}"))
                            .build()
                    });
                }
                out.build()
            });
        let second = mock!(Client::put_events)
            .match_requests(|r| r.entries().len() == 2)
            .then_output(|| {
                PutEventsOutput::builder()
                    .entries(PutEventsResultEntry::builder().event_id("a").build())
                    .entries(PutEventsResultEntry::builder().event_id("b").build())
                    .build()
            });
        let bus = EventBus::new(
            mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&first, &second]),
            "ops",
        );
        let events: Vec<_> = (0..12).map(event).collect();
        let accepted = bus.publish(&events).await.unwrap();
        assert_eq!(accepted.len(), 12);
        assert_eq!(accepted.iter().filter(|a| !**a).count(), 1);
        assert!(!accepted[3]);
    }

    fn internal_error() -> aws_sdk_eventbridge::operation::put_events::PutEventsError {
        aws_sdk_eventbridge::operation::put_events::PutEventsError::InternalException(
            aws_sdk_eventbridge::types::error::InternalException::builder()
                .message("internal")
                .build(),
        )
    }

    #[tokio::test]
    async fn a_failed_batch_marks_its_events_not_accepted_and_keeps_the_others() {
        let failed = mock!(Client::put_events)
            .match_requests(|r| r.entries().len() == 10)
            .then_error(internal_error);
        let second = mock!(Client::put_events)
            .match_requests(|r| r.entries().len() == 2)
            .then_output(|| {
                PutEventsOutput::builder()
                    .entries(PutEventsResultEntry::builder().event_id("a").build())
                    .entries(PutEventsResultEntry::builder().event_id("b").build())
                    .build()
            });
        let bus = EventBus::new(
            mock_client!(
                aws_sdk_eventbridge,
                RuleMode::Sequential,
                [&failed, &second]
            ),
            "ops",
        );
        let events: Vec<_> = (0..12).map(event).collect();
        let accepted = bus.publish(&events).await.unwrap();
        assert_eq!(accepted, [vec![false; 10], vec![true; 2]].concat());
    }

    #[tokio::test]
    async fn every_batch_failed_is_an_error() {
        let failed = mock!(Client::put_events).then_error(internal_error);
        let bus = EventBus::new(
            mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&failed]),
            "ops",
        );
        let events: Vec<_> = (0..3).map(event).collect();
        assert!(bus.publish(&events).await.is_err());
    }
}
