using Google.Protobuf;
using Google.Protobuf.Reflection;
using Microsoft.OpenApi.Models;

namespace Procurement.Server.Http;

/// <summary>
/// The HTTP/JSON face of the API: every unary RPC at the route its <c>google.api.http</c> rule names,
/// through the same interceptors as gRPC (key, role, tenant, validation, idempotency, errors), and the
/// OpenAPI document of those routes.
/// </summary>
public static class HttpJson
{
    /// <summary>Where the OpenAPI document is served; <c>{documentName}</c> is <see cref="DocumentName"/>.</summary>
    public const string OpenApiRoute = "openapi/{documentName}.json";

    public const string DocumentName = "v1";

    /// <summary>Every google.rpc detail type the server sends, so errors keep their details in JSON.</summary>
    public static readonly TypeRegistry ErrorDetailTypes = TypeRegistry.FromMessages(
        Google.Rpc.ErrorInfo.Descriptor, Google.Rpc.BadRequest.Descriptor, Google.Rpc.PreconditionFailure.Descriptor,
        Google.Rpc.RetryInfo.Descriptor);

    private static readonly JsonFormatter StatusFormatter = new(JsonFormatter.Settings.Default.WithTypeRegistry(ErrorDetailTypes));

    public static void AddHttpJson(this IServiceCollection services)
    {
        services.AddGrpc().AddJsonTranscoding(o =>
        {
            o.TypeRegistry = ErrorDetailTypes;
            // Proto3's JSON mapping: 64-bit integers as strings, so money in micros (past 2^53) survives
            // JavaScript and every other reader that parses JSON numbers as doubles.
            o.JsonSettings.WriteInt64sAsStrings = true;
        });
        services.AddGrpcSwagger();
        services.AddSwaggerGen(o =>
        {
            o.SwaggerDoc(DocumentName, new OpenApiInfo
            {
                Title = "Procurement API",
                Version = DocumentName,
                Description = "HTTP/JSON routes of the procurement.v1 gRPC services. Send 'Authorization: Bearer <api key>'; errors are google.rpc.Status in JSON.",
            });
            o.AddSecurityDefinition("bearer", new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http, Scheme = "bearer", Description = "An API key (pk_…) made by 'Procurement.Server keys create'.",
            });
            o.AddSecurityRequirement(new OpenApiSecurityRequirement
            {
                [new OpenApiSecurityScheme { Reference = new OpenApiReference { Type = ReferenceType.SecurityScheme, Id = "bearer" } }] = [],
            });
            var protoDocs = Path.Combine(AppContext.BaseDirectory, "Procurement.Protos.xml");
            if (File.Exists(protoDocs))
            {
                o.IncludeGrpcXmlComments(protoDocs, includeControllerXmlComments: true);
            }
        });
    }

    public static void UseHttpJson(this WebApplication app)
    {
        app.UseMiddleware<StrictJsonBodies>();
        app.UseSwagger(o => o.RouteTemplate = OpenApiRoute);
    }

    /// <summary>Writes a google.rpc.Status the way transcoding writes errors.</summary>
    public static async Task WriteStatusAsync(HttpContext context, int httpStatus, Google.Rpc.Status status)
    {
        context.Response.StatusCode = httpStatus;
        context.Response.ContentType = "application/json; charset=utf-8";
        await context.Response.WriteAsync(StatusFormatter.Format(status), context.RequestAborted);
    }
}
