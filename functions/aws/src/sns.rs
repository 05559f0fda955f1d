//! Notifications to an SNS topic (template.yaml's `NotifyTopicArn`): email, SMS, a chat
//! integration or anything else subscribed to it hears when a connection needs its owner.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use homehook_core::notify::{Notification, Notify, NotifyError};

/// Publishes each notification to one topic.
#[derive(Debug, Clone)]
pub struct SnsTopic {
    client: Client,
    topic_arn: String,
}

impl SnsTopic {
    /// The topic `topic_arn`, through `client`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

/// SNS subjects are ASCII, at most 100 characters, one line.
fn subject(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(100)
        .collect()
}

fn attribute(value: &str) -> Result<MessageAttributeValue, NotifyError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| NotifyError::Delivery(e.to_string()))
}

#[async_trait]
impl Notify for SnsTopic {
    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let message = match &n.reconnect_url {
            Some(url) => format!("{}\n\n{url}", n.message),
            None => n.message.clone(),
        };
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(&n.title))
            .message(message)
            // For subscription filter policies ("only reauth_needed to my phone").
            .message_attributes("event", attribute(n.event.as_str())?)
            .message_attributes("connection", attribute(&n.connection)?)
            .send()
            .await
            .map_err(|e| NotifyError::Delivery(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    fn describe(&self) -> String {
        "SNS topic".into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn subjects_are_ascii_and_short() {
        assert_eq!(super::subject("homehook: Séjour"), "homehook: S?jour");
        assert_eq!(super::subject(&"x".repeat(300)).len(), 100);
    }
}
