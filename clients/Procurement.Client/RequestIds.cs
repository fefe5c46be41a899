using Google.Protobuf;

namespace Procurement.Client;

/// <summary>
/// One request id per logical call, generated before the first attempt and reused on every retry.
/// Version 7 UUIDs start with the time, so the server's idempotency index appends them in order
/// instead of writing a random page for each call.
/// </summary>
internal static class RequestIds
{
    public static T Ensure<T>(T request, TimeProvider time) where T : IMessage
    {
        var field = request.Descriptor.FindFieldByName("request_id");
        if (field is not null && string.IsNullOrEmpty((string)field.Accessor.GetValue(request)))
        {
            field.Accessor.SetValue(request, Guid.CreateVersion7(time.GetUtcNow()).ToString());
        }

        return request;
    }
}
