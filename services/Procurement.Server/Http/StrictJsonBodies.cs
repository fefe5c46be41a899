using Google.Protobuf;
using Google.Rpc;
using Microsoft.AspNetCore.Grpc.JsonTranscoding;
using Procurement.Domain.Errors;
using Procurement.Server.ErrorHandling;

namespace Procurement.Server.Http;

/// <summary>
/// Reads an HTTP/JSON request body with protobuf's strict JSON parser before transcoding does. Transcoding
/// drops unknown fields (a misspelt <c>requestId</c> would make a write silently non-idempotent) and
/// answers every syntax error with one sentence; this refuses both with the field or position at fault.
/// </summary>
internal sealed class StrictJsonBodies(RequestDelegate next)
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));

    public async Task InvokeAsync(HttpContext context)
    {
        if (context.GetEndpoint()?.Metadata.GetMetadata<GrpcJsonTranscodingMetadata>() is { HttpRule.Body: "*" } route
            && context.Request.ContentLength is not 0)
        {
            // Buffered (to disk past 30 KB) so transcoding reads the same bytes again; Kestrel's body limit applies.
            context.Request.EnableBuffering();
            string body;
            using (var reader = new StreamReader(context.Request.Body, leaveOpen: true))
            {
                body = await reader.ReadToEndAsync(context.RequestAborted);
            }
            context.Request.Body.Position = 0;
            if (body.Length > 0 && Refusal(body, route.MethodDescriptor.InputType) is { } refusal)
            {
                await HttpJson.WriteStatusAsync(context, StatusCodes.Status400BadRequest, refusal);
                return;
            }
        }
        await next(context);
    }

    private static Google.Rpc.Status? Refusal(string body, Google.Protobuf.Reflection.MessageDescriptor type)
    {
        try
        {
            Parser.Parse(body, type);
            return null;
        }
        catch (Exception e) when (e is InvalidJsonException or InvalidProtocolBufferException or FormatException or OverflowException)
        {
            var message = $"The request body is not a valid {type.Name} in JSON: {e.Message}";
            return new Google.Rpc.Status
            {
                Code = (int)Grpc.Core.StatusCode.InvalidArgument,
                Message = ErrorText.Bound(message, ErrorText.MaxMessageBytes),
                Details =
                {
                    Google.Protobuf.WellKnownTypes.Any.Pack(new ErrorInfo { Reason = ErrorReasons.InvalidJson, Domain = ErrorReasons.Domain }),
                    Google.Protobuf.WellKnownTypes.Any.Pack(new BadRequest
                    {
                        FieldViolations = { new BadRequest.Types.FieldViolation { Field = "body", Description = ErrorText.Bound(e.Message, ErrorText.MaxPartBytes) } },
                    }),
                },
            };
        }
    }
}
